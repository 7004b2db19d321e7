/**
 * Retention (DESIGN §10), and the history partitions of the coming days. History older than each workspace's `retentionDays` goes, and so do old rejections,
 * poll runs and processed scheduled events. A daily history partition that every workspace's retention has passed
 * is detached concurrently and dropped whole (no row-by-row delete, and inserts into the live partitions never
 * wait on it); in a partition that only some workspaces have outlived, their rows are deleted in small batches.
 *
 * Safe from several processes at once: a run holds a session advisory lock and a second run skips; every step is
 * idempotent besides, so a run that dies half-way is finished by the next.
 */
import type { Database, Sql } from '../db/database.ts';
import { ensureHistoryPartitions, forgetHistoryPartitions, partitionDay, upcomingDays } from '../db/history-partitions.ts';
import { unattributedWorkspace } from '../read/rejections.ts';

const dayMs = 86_400_000;
/** A fixed key for pg_try_advisory_lock: "fleetwire retention". */
const retentionLockKey = 7_265_112_003;
const batchRows = 5000;
/** Rejections of updates that named no workspace, and processed event ids, are kept this long. */
const unattributedKeepDays = 30;
const scheduledEventKeepDays = 7;
/** Readings counted per connection and five minutes (ingest_reading_counts) are kept this long. */
const readingCountKeepDays = 2;

export interface RetentionReport {
  skipped: boolean;
  droppedPartitions: string[];
  deletedHistoryRows: number;
  deletedRejections: number;
  deletedChargingSessions: number;
  deletedEvents: number;
  deletedPollRuns: number;
  deletedScheduledEvents: number;
  /** Shadow readings and parity hours past the cutover gate's window (and a day). */
  deletedParityRows: number;
}

async function deleteInBatches(sql: Sql, statement: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await sql.query(statement, params);
    total += rowCount;
    if (rowCount < batchRows) return total;
  }
}

async function dropPartition(session: Sql, name: string, pendingDetach: boolean): Promise<void> {
  // A detach that a crashed run left pending is finished first; then the table goes.
  if (pendingDetach) await session.exec(`ALTER TABLE signal_history DETACH PARTITION ${name} FINALIZE`);
  else await session.exec(`ALTER TABLE signal_history DETACH PARTITION ${name} CONCURRENTLY`);
  await session.exec(`DROP TABLE IF EXISTS ${name}`);
}

/**
 * Workspaces that rejections are kept under but that do not exist: deleted since (updates still arriving for them
 * are refused `unknown_workspace` under their id), or never were. No policy names them, so they are kept as long as
 * the rejections that name no workspace. Found with one index probe per distinct workspace, not a scan.
 */
async function workspacesGoneFromRejections(sql: Sql): Promise<string[]> {
  const { rows } = await sql.query<{ workspace_id: string }>(
    `WITH RECURSIVE kept AS (
       (SELECT workspace_id FROM ingest_rejections ORDER BY workspace_id LIMIT 1)
       UNION ALL
       SELECT (SELECT r.workspace_id FROM ingest_rejections r WHERE r.workspace_id > kept.workspace_id ORDER BY r.workspace_id LIMIT 1)
         FROM kept WHERE kept.workspace_id IS NOT NULL
     )
     SELECT workspace_id FROM kept
      WHERE workspace_id IS NOT NULL AND workspace_id <> $1
        AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = kept.workspace_id)`,
    [unattributedWorkspace],
  );
  return rows.map((row) => row.workspace_id);
}

/** A run in progress per database handle: PGlite is one session, where the advisory lock cannot tell runs apart. */
const inProgress = new WeakMap<Database, Promise<RetentionReport>>();

export async function runRetention(db: Database, nowMs: number = Date.now()): Promise<RetentionReport> {
  const running = inProgress.get(db);
  if (running) {
    await running.catch(() => undefined);
    return { skipped: true, droppedPartitions: [], deletedHistoryRows: 0, deletedRejections: 0, deletedChargingSessions: 0, deletedEvents: 0, deletedPollRuns: 0, deletedScheduledEvents: 0, deletedParityRows: 0 };
  }
  const run = retention(db, nowMs).finally(() => inProgress.delete(db));
  inProgress.set(db, run);
  return run;
}

async function retention(db: Database, nowMs: number): Promise<RetentionReport> {
  const report: RetentionReport = {
    skipped: false,
    droppedPartitions: [],
    deletedHistoryRows: 0,
    deletedRejections: 0,
    deletedChargingSessions: 0,
    deletedEvents: 0,
    deletedPollRuns: 0,
    deletedScheduledEvents: 0,
    deletedParityRows: 0,
  };
  const now = new Date(nowMs).toISOString();
  await db.withSession(async (session) => {
    const { rows: lock } = await session.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [retentionLockKey]);
    if (!lock[0]?.ok) {
      report.skipped = true;
      return;
    }
    try {
      const { rows: policies } = await session.query<{ workspace_id: string; retention_days: number; event_retention_days: number; parity_window_hours: number }>(
        'SELECT workspace_id, retention_days, event_retention_days, parity_window_hours FROM telematics_policies',
      );
      const longestDays = policies.reduce((max, p) => Math.max(max, p.retention_days), 0);
      const { rows: partitions } = await session.query<{ name: string; pending: boolean }>(
        `SELECT c.relname AS name, i.inhdetachpending AS pending
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'signal_history'::regclass
          ORDER BY c.relname`,
      );

      // Whole days every workspace's retention has passed.
      const everyoneCutoff = nowMs - longestDays * dayMs;
      for (const partition of partitions) {
        const day = partitionDay(partition.name);
        if (day === undefined || day + dayMs > everyoneCutoff) continue;
        await dropPartition(session, partition.name, partition.pending);
        report.droppedPartitions.push(partition.name);
      }
      if (report.droppedPartitions.length > 0) forgetHistoryPartitions(db);

      // Rows of workspaces with a shorter retention, partition by partition, in small batches.
      const kept = partitions.filter((p) => !report.droppedPartitions.includes(p.name) && partitionDay(p.name) !== undefined);
      for (const policy of policies) {
        const cutoff = nowMs - policy.retention_days * dayMs;
        for (const partition of kept) {
          if (partitionDay(partition.name)! >= cutoff || partition.pending) continue;
          report.deletedHistoryRows += await deleteInBatches(
            session,
            `DELETE FROM ${partition.name} WHERE ctid = ANY(ARRAY(
               SELECT ctid FROM ${partition.name} WHERE workspace_id = $1 AND observed_at < $2 LIMIT ${batchRows}))`,
            [policy.workspace_id, new Date(cutoff).toISOString()],
          );
        }
        report.deletedRejections += await deleteInBatches(
          session,
          `DELETE FROM ingest_rejections WHERE workspace_id = $1 AND id = ANY(ARRAY(
             SELECT id FROM ingest_rejections WHERE workspace_id = $1 AND rejected_at < $2 LIMIT ${batchRows}))`,
          [policy.workspace_id, new Date(cutoff).toISOString()],
        );
        // Reading counts serve health's last hour; two days of them are kept for an operator looking back.
        await deleteInBatches(
          session,
          `DELETE FROM ingest_reading_counts WHERE workspace_id = $1 AND (bucket_start, connection_id, slot) IN (
             SELECT bucket_start, connection_id, slot FROM ingest_reading_counts WHERE workspace_id = $1 AND bucket_start < $2 LIMIT ${batchRows})`,
          [policy.workspace_id, new Date(nowMs - readingCountKeepDays * dayMs).toISOString()],
        );
        report.deletedChargingSessions += await deleteInBatches(
          session,
          `DELETE FROM charging_sessions WHERE workspace_id = $1 AND (connection_id, external_id) IN (
             SELECT connection_id, external_id FROM charging_sessions WHERE workspace_id = $1 AND started_at < $2 LIMIT ${batchRows})`,
          [policy.workspace_id, new Date(cutoff).toISOString()],
        );
        // Events are kept for replay for their own, shorter time. A workspace's old events are the first in its log
        // order (an event's created_at follows its position to within one unit of work), so the scan walks the
        // primary key from the oldest event and stops at the first one young enough to keep: it reads what it
        // deletes and one row more. An old event just past that one (its unit of work started before the kept
        // event's, committed after) goes in a later run.
        report.deletedEvents += await deleteInBatches(
          session,
          `DELETE FROM events WHERE workspace_id = $1 AND position = ANY(ARRAY(
             SELECT position FROM events
              WHERE workspace_id = $1 AND created_at < $2
                AND position < COALESCE((SELECT position FROM events WHERE workspace_id = $1 AND created_at >= $2
                                          ORDER BY position LIMIT 1), 9223372036854775807)
              ORDER BY position LIMIT ${batchRows}))`,
          [policy.workspace_id, new Date(nowMs - policy.event_retention_days * dayMs).toISOString()],
        );
        // Parity (cutover shadow) is judged over the gate's window: its readings and hours are kept a day longer.
        const parityCutoff = new Date(nowMs - (policy.parity_window_hours + 24) * 3600_000).toISOString();
        report.deletedParityRows += await deleteInBatches(
          session,
          `DELETE FROM shadow_readings WHERE workspace_id = $1 AND (vehicle_id, signal, side, observed_at) IN (
             SELECT vehicle_id, signal, side, observed_at FROM shadow_readings WHERE workspace_id = $1 AND observed_at < $2 LIMIT ${batchRows})`,
          [policy.workspace_id, parityCutoff],
        );
        report.deletedParityRows += await deleteInBatches(
          session,
          `DELETE FROM parity_hours WHERE workspace_id = $1 AND (hour, vehicle_id, signal) IN (
             SELECT hour, vehicle_id, signal FROM parity_hours WHERE workspace_id = $1 AND hour < $2 LIMIT ${batchRows})`,
          [policy.workspace_id, parityCutoff],
        );
        report.deletedPollRuns += await deleteInBatches(
          session,
          `DELETE FROM poll_runs WHERE workspace_id = $1 AND id = ANY(ARRAY(
             SELECT id FROM poll_runs WHERE workspace_id = $1 AND started_at < $2 LIMIT ${batchRows}))`,
          [policy.workspace_id, new Date(cutoff).toISOString()],
        );
      }
      for (const workspaceId of [unattributedWorkspace, ...(await workspacesGoneFromRejections(session))]) {
        report.deletedRejections += await deleteInBatches(
          session,
          `DELETE FROM ingest_rejections WHERE workspace_id = $1 AND id = ANY(ARRAY(
             SELECT id FROM ingest_rejections WHERE workspace_id = $1 AND rejected_at < $2::timestamptz - make_interval(days => $3) LIMIT ${batchRows}))`,
          [workspaceId, now, unattributedKeepDays],
        );
      }
      const events = await session.query(
        `DELETE FROM scheduled_events WHERE received_at < $1::timestamptz - make_interval(days => $2)`,
        [now, scheduledEventKeepDays],
      );
      report.deletedScheduledEvents = events.rowCount;
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [retentionLockKey]);
    }
  });
  // The coming days' partitions exist before any reading needs them (ingest then never has to make one).
  await ensureHistoryPartitions(db, upcomingDays(nowMs));
  return report;
}
