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

export function installAuth(app: FastifyInstance, options: { db: Database; adminToken: string; serviceToken: string }): void {
  app.decorateRequest('principal', null);

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
    if (access === 'public') return;

    const token = bearerToken(request);
    if (token === undefined) return sendProblem(reply, 401, 'unauthorized', 'send a bearer token in the Authorization header');
    const principal = await identify(token);
    if (!principal) return sendProblem(reply, 401, 'invalid_token', 'the bearer token is not valid');
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
