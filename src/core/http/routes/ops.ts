/** Liveness, readiness, metrics and the API descriptions (OpenAPI for requests, AsyncAPI for events). */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { isSchemaCurrent } from '../../db/migrate.ts';
import { asyncApiDocument } from '../../events/asyncapi.ts';
import { metricsRegistry } from '../../metrics.ts';
import { isCredentialKeyCurrent } from '../../registry/credential-key.ts';
import { HttpProblem, problemResponses } from '../problem.ts';
import type { TypedApp } from '../typed-app.ts';

export function registerOpsRoutes(app: TypedApp, deps: { db: Database; secretKey: Buffer; natsSubjectPrefix?: string }): void {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: { summary: 'Liveness: the process answers', tags: ['ops'], security: [], response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { access: 'public' },
      schema: {
        summary: "Readiness: the database answers, the schema is current and this process's credential key is the deployment's",
        tags: ['ops'],
        security: [],
        response: { 200: z.object({ status: z.literal('ready') }), ...problemResponses(503) },
      },
    },
    async () => {
      let ready = false;
      let keyCurrent = true;
      try {
        ready = await isSchemaCurrent(deps.db);
        keyCurrent = ready && (await isCredentialKeyCurrent(deps.db, deps.secretKey));
      } catch {
        ready = false;
      }
      if (!ready) throw new HttpProblem(503, 'not_ready', 'the database is unreachable or its schema is not current');
      if (!keyCurrent) {
        throw new HttpProblem(503, 'credential_key_mismatch', "the database's provider credentials were re-encrypted under another key: restart this process with the new FLEETWIRE_SECRET_KEY");
      }
      return { status: 'ready' as const };
    },
  );

  app.get(
    '/metrics',
    {
      config: { access: 'metrics' },
      schema: { summary: 'Prometheus metrics (service or admin token)', tags: ['ops'], response: { 200: z.string(), ...problemResponses(401, 403) } },
    },
    async (_request, reply) => {
      reply.type(metricsRegistry.contentType);
      return metricsRegistry.metrics();
    },
  );

  app.get(
    '/openapi.json',
    { config: { access: 'public' }, schema: { hide: true } },
    async () => app.swagger(),
  );

  app.get(
    '/asyncapi.json',
    { config: { access: 'public' }, schema: { hide: true } },
    async (request) =>
      asyncApiDocument({ httpHost: request.host, httpProtocol: request.protocol === 'https' ? 'https' : 'http', natsSubjectPrefix: deps.natsSubjectPrefix ?? 'fleetwire' }),
  );
}
