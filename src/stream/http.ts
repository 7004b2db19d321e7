/**
 * The stream process's own HTTP surface: `/healthz` for liveness (the process answers), `/readyz` for readiness
 * (it can deliver to core: 503 with the reasons when core has not answered lately, delivery keeps failing, the buffer
 * is full or core refused the service token), `/metrics` (service token) for Prometheus.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { StreamRuntime } from './runtime.ts';
import { streamRegistry } from './metrics.ts';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export async function startStreamHttp(runtime: StreamRuntime, options: { host: string; port: number; serviceToken: string }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok', holder: runtime.holder, connections: runtime.connections.size }));
  app.get('/readyz', async (_request, reply) => {
    const { ready, reasons } = runtime.readiness();
    if (ready) return { status: 'ready', holder: runtime.holder, connections: runtime.connections.size };
    return reply
      .code(503)
      .type('application/problem+json')
      .send({ type: 'urn:fleetwire:problem:not_ready', title: 'Service Unavailable', status: 503, code: 'not_ready', detail: reasons.map((r) => r.detail).join('; '), reasons });
  });
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
