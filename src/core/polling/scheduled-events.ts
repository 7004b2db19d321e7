/**
 * The scheduled event processor (DESIGN §5): takes an EventBridge event envelope, from an EventBridge Scheduler
 * rule through `POST /internal/v1/scheduled-events` or from the embedded ticker, and turns it into workspace poll
 * jobs. Events are idempotent by id: a redelivered id polls nothing. A workspace is due when telematics is
 * enabled, its cutover is `core` or `shadow` (core polls beside the legacy poller), it has an enabled poll connection
 * and its poll interval has passed since it was last enqueued; `detail.workspaceId` targets one workspace now, whatever
 * its interval. A workspace owed the closing poll of a rollback from core (registry/workspaces.ts `putCutover`) is
 * due at once, whatever its mode, until the poll runner has run it.
 *
 * Every new event also moves the scheduler mark of each enabled workspace it reaches (every one for an empty detail,
 * the target otherwise), whether or not it makes it due: health tells a scheduler that stopped (`scheduler_silent`)
 * from these marks. A disabled workspace is skipped, by the marks as by the polls.
 *
 * The event's record, the scheduler marks, the workspaces' enqueue marks and the jobs are written in one transaction.
 */
import { z } from 'zod';
import { safeText, timestampSchema } from '../../canonical/update.ts';
import type { Database, Sql } from '../db/database.ts';
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

/**
 * Moves the scheduler mark of every enabled workspace the event reaches to `receivedAt`, one row per workspace.
 * A mark younger than a tenth of the workspace's poll interval is left as it is: a ticker every few seconds does
 * not rewrite every workspace's row on every tick, and the mark is never more than a tenth of an interval behind.
 */
export async function recordSchedulerMarks(tx: Sql, event: { id: string; source: string }, target: string | null, receivedAt: string): Promise<void> {
  await tx.query(
    `INSERT INTO workspace_scheduler_marks AS m (workspace_id, last_event_at, last_event_id, last_source)
     SELECT p.workspace_id, $3::timestamptz, $1, $2
       FROM telematics_policies p
      WHERE p.enabled AND ($4::uuid IS NULL OR p.workspace_id = $4::uuid)
     ON CONFLICT (workspace_id) DO UPDATE
        SET last_event_at = excluded.last_event_at, last_event_id = excluded.last_event_id, last_source = excluded.last_source
      WHERE m.last_event_at < excluded.last_event_at - make_interval(secs =>
              (SELECT p.poll_interval_seconds FROM telematics_policies p WHERE p.workspace_id = m.workspace_id) / 10.0)`,
    [event.id, event.source, receivedAt, target],
  );
}

/** `receivedAtMs`: when the event arrived, by the clock health is judged by (injectable for tests). */
export async function processScheduledEvent(db: Database, jobs: PollJobQueue, event: ScheduledEvent, receivedAtMs: number = Date.now()): Promise<ScheduledEventResult> {
  const target = event.detail?.workspaceId?.toLowerCase() ?? null;
  return db.transaction(async (tx) => {
    const recorded = await tx.query(
      `INSERT INTO scheduled_events (id, source, detail_type, event_time, target)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO NOTHING`,
      [event.id, event.source, event['detail-type'], event.time, target],
    );
    // A redelivered id is not a new firing of the schedule: it neither polls nor counts as the scheduler alive.
    if (recorded.rowCount === 0) return { eventId: event.id, duplicate: true, workspacesDue: 0 };
    await recordSchedulerMarks(tx, event, target, new Date(receivedAtMs).toISOString());

    const { rows } = await tx.query<{ workspace_id: string }>(
      `WITH eligible AS (
         SELECT w.id, p.poll_interval_seconds, c.closing_poll_generation IS NOT NULL AS closing
           FROM workspaces w
           JOIN telematics_policies p ON p.workspace_id = w.id
           JOIN cutover_states c ON c.workspace_id = w.id
          WHERE p.enabled AND (c.mode IN ('core', 'shadow') OR c.closing_poll_generation IS NOT NULL)
            AND ($2::uuid IS NULL OR w.id = $2::uuid)
            AND EXISTS (SELECT 1 FROM provider_connections pc
                         WHERE pc.workspace_id = w.id AND pc.transport = 'poll' AND pc.enabled)
       )
       INSERT INTO workspace_poll_schedule AS s (workspace_id, last_enqueued_at, last_event_id)
       SELECT id, now(), $1 FROM eligible
       ON CONFLICT (workspace_id) DO UPDATE
          SET last_enqueued_at = now(), last_event_id = $1
        WHERE $2::uuid IS NOT NULL
           OR (SELECT closing FROM eligible e WHERE e.id = s.workspace_id)
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
