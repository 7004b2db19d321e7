/**
 * Bearer authentication and scope checks, on every route (DESIGN §9). Each route declares who may call it in
 * `config.access`; a route without a declaration is refused, so a forgotten declaration cannot open a route.
 *
 * - `public`: anyone (liveness, readiness, the API description, the dashboard's files);
 * - `admin`: the admin token;
 * - `service`: the service token (core's internal API);
 * - `metrics`: the service or the admin token;
 * - `workspace`: the admin token, or an API key of the workspace named by the `ws` path parameter. A key of
 *   another workspace gets 404, exactly as if the workspace did not exist: nothing leaks across tenants.
 *
 * Behind a load balancer every client can share one address, so an address is never a reason to refuse a valid
 * token: the token is identified first, and only tokens we do not know count as guesses. A client address that
 * presents more than a few unknown tokens a minute gets 429 for its further unknown tokens until the minute is
 * over; public routes are rate limited per client address. The address is the socket's peer, or the
 * `X-Forwarded-For` client when the peer is one of the configured trusted proxies (Fastify's `trustProxy`). The
 * counters live in @fastify/rate-limit's bounded LRU store, per process.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fastifyRateLimit from '@fastify/rate-limit';
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

async function tooMany(reply: FastifyReply, retryAfterSeconds: number, detail: string) {
  reply.header('retry-after', String(Math.max(1, retryAfterSeconds)));
  return sendProblem(reply, 429, 'too_many_requests', detail);
}

export interface ClientLimits {
  /** Requests one client address may make to public routes per `publicWindowMs`. */
  publicMax: number;
  publicWindowMs: number;
  /** Unknown tokens one client address may present per minute before the next ones get 429. */
  unknownTokensPerMinute: number;
}

export const defaultClientLimits: ClientLimits = { publicMax: 100, publicWindowMs: 2000, unknownTokensPerMinute: 10 };

type LimitAnswer = { isAllowed: true } | { isAllowed: false; isExceeded: boolean; ttlInSeconds: number };
/** Seconds to wait when the limit is exceeded, else 0. */
const exceededFor = (answer: LimitAnswer) => (!answer.isAllowed && answer.isExceeded ? Math.max(1, answer.ttlInSeconds) : 0);

export async function installAuth(
  app: FastifyInstance,
  options: { db: Database; adminToken: string; serviceToken: string; limits?: Partial<ClientLimits> },
): Promise<void> {
  app.decorateRequest('principal', null);
  const limits = { ...defaultClientLimits, ...options.limits };
  // Each limiter's store is an LRU of at most 5,000 client addresses (the plugin's default): bounded, never swept.
  await app.register(fastifyRateLimit, { global: false });
  const publicLimit = app.createRateLimit({ max: limits.publicMax, timeWindow: limits.publicWindowMs });
  const guessLimit = app.createRateLimit({ max: limits.unknownTokensPerMinute, timeWindow: 60_000 });

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
    if (access === 'public') {
      const wait = exceededFor(await publicLimit(request));
      return wait > 0 ? tooMany(reply, wait, 'too many requests from this client; slow down') : undefined;
    }

    const token = bearerToken(request);
    if (token === undefined) return sendProblem(reply, 401, 'unauthorized', 'send a bearer token in the Authorization header');
    const principal = await identify(token);
    if (!principal) {
      const wait = exceededFor(await guessLimit(request));
      if (wait > 0) return tooMany(reply, wait, 'too many unknown tokens from this client; wait before trying another');
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
