/**
 * Bearer authentication and scope checks, on every route (DESIGN §9). Each route declares who may call it in
 * `config.access`; a route without a declaration is refused, so a forgotten declaration cannot open a route.
 *
 * - `public`: anyone (liveness, readiness, the API description);
 * - `admin`: the admin token;
 * - `service`: the service token (core's internal API);
 * - `metrics`: the service or the admin token;
 * - `workspace`: the admin token, or an API key of the workspace named by the `ws` path parameter. A key of
 *   another workspace gets 404, exactly as if the workspace did not exist: nothing leaks across tenants.
 *
 * Public routes are rate limited per client, and a client presenting more than a few unknown tokens a minute is
 * refused (429 with Retry-After) for a minute.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Database } from '../db/database.ts';
import { looksLikeApiKey, verifyApiKey } from '../registry/api-keys.ts';
import { problem, problemContentType } from './problem.ts';

export type Access = 'public' | 'admin' | 'service' | 'metrics' | 'workspace';

export type Principal = { role: 'admin' } | { role: 'service' } | { role: 'workspace'; workspaceId: string; keyId: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Constant-time equality of two secrets of any length (compares their digests). */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

async function sendProblem(reply: FastifyReply, status: number, code: string, detail: string) {
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="fleetwire"');
  return reply.code(status).type(problemContentType).send(problem(status, code, detail, { instance: reply.request.url.split('?')[0] }));
}

/**
 * Per-client limits, in memory per process: routes anyone may call get a token bucket per client address, and
 * a client that keeps presenting tokens we do not know is refused for a while (guessing keys gets slow).
 */
class ClientLimits {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly failures = new Map<string, { count: number; since: number; blockedUntil: number }>();

  constructor(
    private readonly publicPerSecond: number,
    private readonly publicBurst: number,
    private readonly failuresPerMinute: number,
  ) {}

  /** Milliseconds to wait before the next public request, or 0 to go ahead. */
  publicWait(client: string, now: number): number {
    const bucket = this.buckets.get(client) ?? { tokens: this.publicBurst, at: now };
    bucket.tokens = Math.min(this.publicBurst, bucket.tokens + ((now - bucket.at) / 1000) * this.publicPerSecond);
    bucket.at = now;
    this.buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / this.publicPerSecond) * 1000);
  }

  /** Milliseconds the client is still refused after too many unknown tokens, or 0. */
  blockedFor(client: string, now: number): number {
    const entry = this.failures.get(client);
    return entry && entry.blockedUntil > now ? entry.blockedUntil - now : 0;
  }

  recordFailure(client: string, now: number): void {
    const entry = this.failures.get(client);
    if (!entry || now - entry.since > 60_000) {
      this.failures.set(client, { count: 1, since: now, blockedUntil: 0 });
    } else {
      entry.count += 1;
      if (entry.count > this.failuresPerMinute) entry.blockedUntil = now + 60_000;
    }
    // Forget old entries now and then, so the maps stay small.
    if (this.failures.size > 10_000 || this.buckets.size > 10_000) this.sweep(now);
  }

  private sweep(now: number): void {
    for (const [client, entry] of this.failures) if (now - entry.since > 120_000 && entry.blockedUntil < now) this.failures.delete(client);
    for (const [client, bucket] of this.buckets) if (now - bucket.at > 60_000) this.buckets.delete(client);
  }
}

async function tooMany(reply: FastifyReply, waitMs: number, detail: string) {
  reply.header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))));
  return sendProblem(reply, 429, 'too_many_requests', detail);
}

export function installAuth(
  app: FastifyInstance,
  options: { db: Database; adminToken: string; serviceToken: string; publicPerSecond?: number; failedTokensPerMinute?: number },
): void {
  app.decorateRequest('principal', null);
  const limits = new ClientLimits(options.publicPerSecond ?? 50, (options.publicPerSecond ?? 50) * 2, options.failedTokensPerMinute ?? 10);

  const identify = async (token: string): Promise<Principal | undefined> => {
    // Compare against both fixed tokens every time, so timing does not tell which one was close.
    const isAdmin = secretsEqual(token, options.adminToken);
    const isService = secretsEqual(token, options.serviceToken);
    if (isAdmin) return { role: 'admin' };
    if (isService) return { role: 'service' };
    if (looksLikeApiKey(token)) {
      const key = await verifyApiKey(options.db, token);
      if (key) return { role: 'workspace', workspaceId: key.workspaceId, keyId: key.keyId };
    }
    return undefined;
  };

  app.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config.access;
    // A request that matched no route is answered by the not-found handler.
    if (request.routeOptions.url === undefined) return;
    if (access === undefined) return sendProblem(reply, 403, 'forbidden', 'this route declares no access rule');
    const now = Date.now();
    if (access === 'public') {
      const wait = limits.publicWait(request.ip, now);
      return wait > 0 ? tooMany(reply, wait, 'too many requests from this client; slow down') : undefined;
    }

    const blocked = limits.blockedFor(request.ip, now);
    if (blocked > 0) return tooMany(reply, blocked, 'too many unknown tokens from this client; wait before trying again');
    const token = bearerToken(request);
    if (token === undefined) return sendProblem(reply, 401, 'unauthorized', 'send a bearer token in the Authorization header');
    const principal = await identify(token);
    if (!principal) {
      limits.recordFailure(request.ip, now);
      return sendProblem(reply, 401, 'invalid_token', 'the bearer token is not valid');
    }
    request.principal = principal;

    const allowed =
      (access === 'admin' && principal.role === 'admin') ||
      (access === 'service' && principal.role === 'service') ||
      (access === 'metrics' && (principal.role === 'service' || principal.role === 'admin')) ||
      (access === 'workspace' && (principal.role === 'admin' || principal.role === 'workspace'));
    if (!allowed) return sendProblem(reply, 403, 'forbidden', `this route needs ${access === 'workspace' ? 'a workspace key or the admin' : `the ${access}`} token`);

    if (access === 'workspace' && principal.role === 'workspace') {
      const ws = (request.params as { ws?: unknown } | undefined)?.ws;
      if (typeof ws !== 'string' || ws.toLowerCase() !== principal.workspaceId) {
        return sendProblem(reply, 404, 'workspace_not_found', `workspace ${String(ws)} does not exist`);
      }
    }
  });
}
