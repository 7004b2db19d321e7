/**
 * Backfill: an admin asks for a connection's history over a period; everyone with access to the workspace follows
 * the jobs' progress. A job is answered 202 whether it was made now or was there already (the same request again).
 */
import { z } from 'zod';
import { externalDeviceIdSchema, timestampSchema } from '../../../canonical/update.ts';
import type { HistoryAdapter } from '../../../providers/history-adapter.ts';
import { requestBackfill } from '../../backfill/backfill-requests.ts';
import { backfillStatuses, getBackfillJob, listBackfillJobs } from '../../backfill/backfill-store.ts';
import type { Database } from '../../db/database.ts';
import { notFound } from '../../errors.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import { idParam, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

const backfillRequestSchema = z
  .object({
    from: timestampSchema.describe('Start of the period, RFC 3339'),
    to: timestampSchema.optional().describe('End of the period, RFC 3339; now when left out'),
    devices: z.array(externalDeviceIdSchema).min(1).max(500).optional().describe('External ids bound on the connection; all of them when left out'),
  })
  .strict();

export const backfillJobSchema = z
  .object({
    id: z.uuid(),
    connectionId: z.uuid(),
    devices: z.array(z.string()).nullable().describe('The external ids asked for; null: every device bound to the connection'),
    from: z.string(),
    to: z.string(),
    trigger: z.enum(['request', 'bind']),
    status: z.enum(backfillStatuses),
    progress: z.object({
      windowsDone: z.number().int(),
      windowsTotal: z.number().int(),
      readingsFetched: z.number().int(),
      readingsAccepted: z.number().int(),
      readingsLate: z.number().int(),
      readingsDuplicate: z.number().int(),
      readingsRejected: z.number().int(),
      providerRequests: z.number().int(),
    }),
    attempts: z.number().int(),
    lastErrorClass: z.string().nullable(),
    lastErrorMessage: z.string().nullable(),
    notBefore: z.string().nullable().describe('A job waiting out a Retry-After or a back-off starts again then'),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .describe('A backfill job and its progress');

const listQuery = z
  .object({
    connectionId: z.uuid().optional(),
    status: z.enum(backfillStatuses).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

export interface BackfillRouteOptions {
  db: Database;
  clock: () => number;
  adapters: ReadonlyMap<string, HistoryAdapter>;
  maxRangeDays: number;
}

export function registerBackfillRoutes(app: TypedApp, { db, clock, adapters, maxRangeDays }: BackfillRouteOptions): void {
  app.post(
    '/v1/workspaces/:ws/connections/:connectionId/backfill',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Fetch what the connection's provider still holds for a period into history and snapshot (a job; idempotent)",
        tags: ['backfill'],
        params: z.object({ ws: idParam, connectionId: idParam }),
        body: backfillRequestSchema,
        response: { 202: backfillJobSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { ws, connectionId } = request.params;
      const { job } = await requestBackfill(db, ws, connectionId, request.body, {
        nowMs: clock(),
        limits: { maxRangeMs: maxRangeDays * 86_400_000 },
        adapters,
      });
      return reply.code(202).send(job);
    },
  );

  app.get(
    '/v1/workspaces/:ws/backfills',
    {
      config: { access: 'workspace' },
      schema: {
        summary: "The workspace's backfill jobs, newest first",
        tags: ['backfill'],
        params: wsParams,
        querystring: listQuery,
        response: { 200: z.object({ items: z.array(backfillJobSchema) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return { items: await listBackfillJobs(db, request.params.ws, request.query) };
    },
  );

  app.get(
    '/v1/workspaces/:ws/backfills/:jobId',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'One backfill job and its progress',
        tags: ['backfill'],
        params: z.object({ ws: idParam, jobId: idParam }),
        response: { 200: backfillJobSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const job = await getBackfillJob(db, request.params.ws, request.params.jobId);
      if (!job) throw notFound('backfill', request.params.jobId);
      return job;
    },
  );
}
