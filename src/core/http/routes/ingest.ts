/**
 * `POST /internal/v1/ingest`: the ingest handler over HTTP, for the stream runtime and legacy pollers (service
 * token). The body must be an object with an `updates` array within the limits, or nothing is written; each
 * update is then judged on its own and answered in `results`, in order (an update carrying a prototype-polluting
 * key among them: it is `malformed`, the others are judged as usual). When the handler is at capacity the answer
 * is 503 with Retry-After: the caller backs off, nothing queues without bound. A stream process names itself in
 * the `Fleetwire-Stream-Holder` header; its updates count only for connections it holds a live lease on.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { holderSchema, streamHolderHeader } from '../../../canonical/stream-api.ts';
import { canonicalUpdateSchema, ingestLimits } from '../../../canonical/update.ts';
import type { Database } from '../../db/database.ts';
import { ingestBatch } from '../../ingest/ingest-batch.ts';
import type { IngestGate } from '../../ingest/ingest-gate.ts';
import { parseIngestBody } from '../json-body.ts';
import { HttpProblem, problemResponses } from '../problem.ts';
import { ingestResponseSchema } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

const ingestRequestSchema = z.object({
  updates: z.array(canonicalUpdateSchema).max(ingestLimits.updatesPerBatch),
});

/** Only the batch's outer shape is a request error; a bad update is answered in its result. */
function checkBatchShape(body: unknown): { value: unknown } | { error: Error } {
  const updates = (body as { updates?: unknown } | null)?.updates;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !Array.isArray(updates)) {
    const error = Object.assign(new Error('body must be a JSON object with an "updates" array'), {
      validation: [{ instancePath: '', message: 'must be a JSON object with an "updates" array', keyword: 'type', params: {}, schemaPath: '#' }],
      validationContext: 'body',
      statusCode: 400,
    });
    return { error };
  }
  return { value: body };
}

export function registerIngestRoutes(app: FastifyInstance, deps: { db: Database; gate: IngestGate; bodyLimit: number; clock: () => number }): void {
  // A scope of its own, for the body parser that isolates poisoned updates instead of refusing the whole batch.
  void app.register(async (plain) => {
    plain.removeContentTypeParser('application/json');
    plain.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: deps.bodyLimit }, (_request, text, done) => {
      try {
        done(null, parseIngestBody(text as string));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
    registerIngestRoute(plain.withTypeProvider<ZodTypeProvider>(), deps);
  });
}

function registerIngestRoute(app: TypedApp, deps: { db: Database; gate: IngestGate; bodyLimit: number; clock: () => number }): void {
  app.post(
    '/internal/v1/ingest',
    {
      config: { access: 'service' },
      bodyLimit: deps.bodyLimit,
      schema: {
        summary: 'Submit canonical updates to the ingest handler (service token)',
        description: `Up to ${ingestLimits.updatesPerBatch} updates and ${ingestLimits.readingsPerBatch} readings per request. Answers 200 with one result per update, in order; rejections are answers with a reason code.`,
        tags: ['internal'],
        body: ingestRequestSchema,
        response: { 200: ingestResponseSchema, ...problemResponses(400, 401, 403, 413, 415, 503) },
      },
      validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? checkBatchShape : (value: unknown) => ({ value })),
      // The handler builds the answer from typed results; serialize without re-validating thousands of them.
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (request) => {
      const updates = (request.body as { updates: unknown[] }).updates;
      if (updates.length > ingestLimits.updatesPerBatch) {
        throw new HttpProblem(413, 'batch_too_large', `a batch holds at most ${ingestLimits.updatesPerBatch} updates; this one has ${updates.length}`);
      }
      let readings = 0;
      for (const update of updates) {
        const list = (update as { readings?: unknown } | null)?.readings;
        if (Array.isArray(list)) readings += list.length;
      }
      if (readings > ingestLimits.readingsPerBatch) {
        throw new HttpProblem(413, 'batch_too_large', `a batch holds at most ${ingestLimits.readingsPerBatch} readings; this one has ${readings}`);
      }
      const named = request.headers[streamHolderHeader];
      let streamHolder: string | undefined;
      if (named !== undefined) {
        const parsed = holderSchema.safeParse(named);
        if (!parsed.success) throw new HttpProblem(400, 'invalid_holder', `the ${streamHolderHeader} header must be one stream process name: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
        streamHolder = parsed.data;
      }
      const outcome = await deps.gate.run(() => ingestBatch(deps.db, updates, { now: deps.clock(), ...(streamHolder === undefined ? {} : { streamHolder }) }));
      return { results: outcome.results };
    },
  );
}
