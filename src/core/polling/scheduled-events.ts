/**
 * The scheduled event processor (DESIGN §5): takes an EventBridge event envelope, from an EventBridge Scheduler
 * rule through `POST /internal/v1/scheduled-events` or from the embedded ticker, and turns it into workspace poll
 * jobs. Events are idempotent by id: a redelivered id polls nothing. A workspace is due when telematics is
 * enabled, its cutover is `core`, it has an enabled poll connection and its poll interval has passed since it was
 * last enqueued; `detail.workspaceId` targets one workspace now, whatever its interval.
 *
 * The event's record, the workspaces' enqueue marks and the jobs are written in one transaction.
 */
import { z } from 'zod';
import { safeText, timestampSchema } from '../../canonical/update.ts';
import type { Database } from '../db/database.ts';
import type { PollJobQueue } from './job-queue.ts';

export const scheduledEventSchema = z
  .object({
    version: safeText(20),
    id: safeText(200),
    'detail-type': safeText(200),
    source: safeText(200),
    account: safeText(64).optional(),
    time: timestampSchema,
    region: safeText(64).optional(),
    resources: z.array(z.string().max(2048)).max(100).optional(),
    detail: z
      .looseObject({ workspaceId: z.uuid().optional() })
      .optional()
      .describe('Empty: every workspace that is due. workspaceId: that workspace, now.'),
  })
  .describe('An EventBridge event envelope');

export type ScheduledEvent = z.infer<typeof scheduledEventSchema>;

export interface ScheduledEventResult {
  eventId: string;
  duplicate: boolean;
  workspacesDue: number;
}

/** Slack for the interval check, so a ticker a little early does not skip a whole interval. */
const intervalSlackSeconds = 2;

export async function processScheduledEvent(db: Database, jobs: PollJobQueue, event: ScheduledEvent): Promise<ScheduledEventResult> {
  const target = event.detail?.workspaceId?.toLowerCase() ?? null;
  return db.transaction(async (tx) => {
    const recorded = await tx.query(
      `INSERT INTO scheduled_events (id, source, detail_type, event_time, target)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO NOTHING`,
      [event.id, event.source, event['detail-type'], event.time, target],
    );
    if (recorded.rowCount === 0) return { eventId: event.id, duplicate: true, workspacesDue: 0 };

    const { rows } = await tx.query<{ workspace_id: string }>(
      `WITH eligible AS (
         SELECT w.id, p.poll_interval_seconds
           FROM workspaces w
           JOIN telematics_policies p ON p.workspace_id = w.id
           JOIN cutover_states c ON c.workspace_id = w.id
          WHERE p.enabled AND c.mode = 'core'
            AND ($2::uuid IS NULL OR w.id = $2::uuid)
            AND EXISTS (SELECT 1 FROM provider_connections pc
                         WHERE pc.workspace_id = w.id AND pc.transport = 'poll' AND pc.enabled)
       )
       INSERT INTO workspace_poll_schedule AS s (workspace_id, last_enqueued_at, last_event_id)
       SELECT id, now(), $1 FROM eligible
       ON CONFLICT (workspace_id) DO UPDATE
          SET last_enqueued_at = now(), last_event_id = $1
        WHERE $2::uuid IS NOT NULL
           OR s.last_enqueued_at <= now() - make_interval(secs =>
                (SELECT poll_interval_seconds FROM eligible e WHERE e.id = s.workspace_id) - $3)
       RETURNING workspace_id`,
      [event.id, target, intervalSlackSeconds],
    );
    await jobs.enqueue(
      tx,
      rows.map((row) => ({ workspaceId: row.workspace_id, eventId: event.id })),
    );
    await tx.query('UPDATE scheduled_events SET workspaces_due = $2 WHERE id = $1', [event.id, rows.length]);
    return { eventId: event.id, duplicate: false, workspacesDue: rows.length };
  });
}
