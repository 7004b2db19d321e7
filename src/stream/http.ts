/** The stream process's own HTTP surface: `/healthz` for liveness, `/metrics` (service token) for Prometheus. */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { StreamRuntime } from './runtime.ts';
import { streamRegistry } from './metrics.ts';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export async function startStreamHttp(runtime: StreamRuntime, options: { host: string; port: number; serviceToken: string }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok', holder: runtime.holder, connections: runtime.connections.size }));
  app.get('/metrics', async (request, reply) => {
    const header = request.headers.authorization ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? '';
    if (!timingSafeEqual(digest(token), digest(options.serviceToken))) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="fleetwire"')
        .type('application/problem+json')
        .send({ type: 'urn:fleetwire:problem:unauthorized', title: 'Unauthorized', status: 401, code: 'unauthorized', detail: 'send the service token' });
    }
    reply.type(streamRegistry.contentType);
    return streamRegistry.metrics();
  });
  await app.listen({ host: options.host, port: options.port });
  return app;
}
