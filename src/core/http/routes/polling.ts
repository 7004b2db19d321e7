/** Scheduled events in (EventBridge, service token), and the record of poll runs out. */
import type { Database } from '../../db/database.ts';
import type { PollJobQueue } from '../../polling/job-queue.ts';
import { processScheduledEvent, scheduledEventSchema } from '../../polling/scheduled-events.ts';
import { recordScheduledEvent } from '../../metrics.ts';
import { listPollRuns } from '../../read/poll-runs.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import { page, pollRunQuery, pollRunSchema, scheduledEventAnswerSchema, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

export function registerPollingRoutes(app: TypedApp, deps: { db: Database; jobs: PollJobQueue; clock: () => number }): void {
  app.post(
    '/internal/v1/scheduled-events',
    {
      config: { access: 'service' },
      schema: {
        summary: 'Take an EventBridge scheduled event and enqueue the polls of the workspaces it makes due',
        description:
          'Idempotent by event id: a redelivered id answers duplicate: true and polls nothing. An empty detail means every due workspace; detail.workspaceId polls that workspace now.',
        tags: ['internal'],
        body: scheduledEventSchema,
        response: { 202: scheduledEventAnswerSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const answer = await processScheduledEvent(deps.db, deps.jobs, request.body, deps.clock());
      recordScheduledEvent('http', answer.duplicate);
      return reply.code(202).send(answer);
    },
  );

  app.get(
    '/v1/workspaces/:ws/poll-runs',
    {
      config: { access: 'workspace' },
      schema: {
        summary: "The workspace's poll runs, newest first: trigger, timings, status, error class, provider requests, readings by status",
        tags: ['polling'],
        params: wsParams,
        querystring: pollRunQuery,
        response: { 200: page(pollRunSchema), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(deps.db, request.params.ws);
      return listPollRuns(deps.db, request.params.ws, request.query);
    },
  );
}
