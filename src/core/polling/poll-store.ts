/**
 * The SQL of scheduled polling: what a workspace poll loads (policy, cutover, poll connections with their feed
 * cursors and health, bound devices), the fenced cursor commit, connection health, and poll run records.
 */
import type { Database, Sql } from '../db/database.ts';
import { markCredentialsUnreadable } from '../registry/connections.ts';
import type { CutoverMode } from '../registry/workspaces.ts';

export interface PollConnection {
  id: string;
  provider: string;
  baseUrl: string;
  credentialsCiphertext: string;
  cursor: unknown;
  cursorVersion: number;
  /** Core has committed a feed cursor of it (since the feed last started afresh). */
  cursorCommitted: boolean;
  nextPollAt: Date | null;
  rateLimitedUntil: Date | null;
  authFailedAt: Date | null;
  /** Set when the stored credentials could not be decrypted; polling waits until they are entered again. */
  credentialsUnreadableAt: Date | null;
  /** The connection's options as stored (the runner parses them with the provider's contract). */
  options: unknown;
  lastSuccessAt: Date | null;
  consecutiveFailures: number;
}

export interface WorkspacePollPlan {
  enabled: boolean;
  cutover: CutoverMode;
  /** How many cutover changes the workspace has had: what the runs of this plan send their pages under. */
  cutoverGeneration: number;
  /**
   * Set while the workspace is owed the closing poll of a rollback from core: the generation before the rollback,
   * which the closing run sends its pages under (they are owned readings, in `legacy` and in `shadow` alike).
   */
  closingGeneration: number | null;
  connections: PollConnection[];
}

export async function loadPollPlan(sql: Sql, workspaceId: string): Promise<WorkspacePollPlan | undefined> {
  const { rows: workspaces } = await sql.query<{ enabled: boolean; mode: CutoverMode; generation: number; closing_generation: number | null }>(
    `SELECT p.enabled, c.mode, c.generation,
            CASE WHEN c.previous_mode = 'core' AND c.closing_poll_generation = c.generation - 1 THEN c.closing_poll_generation END AS closing_generation
       FROM telematics_policies p JOIN cutover_states c ON c.workspace_id = p.workspace_id
      WHERE p.workspace_id = $1`,
    [workspaceId],
  );
  const workspace = workspaces[0];
  if (!workspace) return undefined;
  const { rows } = await sql.query<{
    id: string;
    provider: string;
    base_url: string;
    credentials_ciphertext: string;
    feed_cursor: unknown;
    feed_cursor_version: number;
    cursor_committed: boolean;
    next_poll_at: Date | null;
    rate_limited_until: Date | null;
    auth_failed_at: Date | null;
    credentials_unreadable_at: Date | null;
    options: unknown;
    last_success_at: Date | null;
    consecutive_failures: number | null;
  }>(
    `SELECT c.id, c.provider, c.base_url, c.credentials_ciphertext, c.feed_cursor, c.feed_cursor_version, c.feed_cursor IS NOT NULL AS cursor_committed,
            c.credentials_unreadable_at, c.options, s.last_success_at, s.next_poll_at, s.rate_limited_until, s.auth_failed_at, s.consecutive_failures
       FROM provider_connections c
       LEFT JOIN connection_poll_states s ON s.workspace_id = c.workspace_id AND s.connection_id = c.id
      WHERE c.workspace_id = $1 AND c.transport = 'poll' AND c.enabled
      -- Longest waiting first: when a poll runs out of time, the connections it did not reach go first next time.
      ORDER BY s.last_attempt_at ASC NULLS FIRST, c.id`,
    [workspaceId],
  );
  return {
    enabled: workspace.enabled,
    cutover: workspace.mode,
    cutoverGeneration: Number(workspace.generation),
    closingGeneration: workspace.closing_generation === null ? null : Number(workspace.closing_generation),
    connections: rows.map((row) => ({
      id: row.id,
      provider: row.provider,
      baseUrl: row.base_url,
      credentialsCiphertext: row.credentials_ciphertext,
      cursor: row.feed_cursor,
      cursorVersion: Number(row.feed_cursor_version),
      cursorCommitted: row.cursor_committed,
      nextPollAt: row.next_poll_at,
      rateLimitedUntil: row.rate_limited_until,
      authFailedAt: row.auth_failed_at,
      credentialsUnreadableAt: row.credentials_unreadable_at,
      options: row.options,
      lastSuccessAt: row.last_success_at,
      consecutiveFailures: row.consecutive_failures ?? 0,
    })),
  };
}

/**
 * The closing poll of a rollback has run: the workspace owes none any more. Fenced on the generation it ran under,
 * so it never clears what a later change owes.
 */
export async function settleClosingPoll(sql: Sql, workspaceId: string, generation: number): Promise<void> {
  await sql.query('UPDATE cutover_states SET closing_poll_generation = NULL WHERE workspace_id = $1 AND closing_poll_generation = $2', [workspaceId, generation]);
}

export async function listBoundDevices(sql: Sql, workspaceId: string, connectionId: string): Promise<string[]> {
  const { rows } = await sql.query<{ external_id: string }>(
    'SELECT external_id FROM device_bindings WHERE workspace_id = $1 AND connection_id = $2 ORDER BY external_id',
    [workspaceId, connectionId],
  );
  return rows.map((row) => row.external_id);
}

/**
 * Stores a connection's new feed cursor, but only over the version it was read at: if another poller moved the
 * cursor meanwhile (a poll that outlived its job), this one's transaction is refused instead of rewinding it.
 */
export async function commitFeedCursor(tx: Sql, workspaceId: string, connectionId: string, expectedVersion: number, cursor: unknown): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE provider_connections SET feed_cursor = $4::jsonb, feed_cursor_version = feed_cursor_version + 1
      WHERE workspace_id = $1 AND id = $2 AND feed_cursor_version = $3`,
    [workspaceId, connectionId, expectedVersion, JSON.stringify(cursor ?? null)],
  );
  return rowCount === 1;
}

/**
 * Starts a connection's feed afresh: no cursor (the next poll reads the provider's latest values) and no poll
 * state. The cursor version moves on, so a poll that read the old cursor cannot write it back.
 */
export async function resetConnectionFeed(db: Database, workspaceId: string, connectionId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      'UPDATE provider_connections SET feed_cursor = NULL, feed_cursor_version = feed_cursor_version + 1 WHERE workspace_id = $1 AND id = $2',
      [workspaceId, connectionId],
    );
    await tx.query('DELETE FROM connection_poll_states WHERE workspace_id = $1 AND connection_id = $2', [workspaceId, connectionId]);
  });
}

/**
 * Claims a connection for one poll run and records the run, in one transaction. The claim is taken only when no
 * other run holds it: it is free, its holder let it lapse (it outlived `claimMs`, which is past the run's deadline),
 * or it is one of this poll runner's own (`mine`, a prefix) that it knows has ended (not in `running`: its outcome
 * could not be recorded, the database being down). So no two processes poll one connection at once, whatever
 * happened to the jobs that started them. Answers the run's id, or null when another run holds the connection.
 */
export async function claimPollRun(
  db: Database,
  run: {
    workspaceId: string;
    connectionId: string;
    provider: string;
    eventId: string | null;
    runner: string;
    claim: string;
    claimMs: number;
    mine: string;
    running: readonly string[];
  },
): Promise<number | null> {
  return db.transaction(async (tx) => {
    const { rows: claimed } = await tx.query(
      `INSERT INTO connection_poll_states AS s (workspace_id, connection_id, last_attempt_at, claimed_by, claimed_until)
       VALUES ($1, $2, now(), $3, now() + $4 * interval '1 millisecond')
       ON CONFLICT (workspace_id, connection_id) DO UPDATE
          SET last_attempt_at = now(), claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
        WHERE s.claimed_until IS NULL OR s.claimed_until < now()
           OR (starts_with(s.claimed_by, $5) AND NOT s.claimed_by = ANY($6::text[]))
       RETURNING 1`,
      [run.workspaceId, run.connectionId, run.claim, run.claimMs, run.mine, run.running],
    );
    if (claimed.length === 0) return null;
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO poll_runs (workspace_id, connection_id, provider, trigger_event_id, runner, status)
       VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id`,
      [run.workspaceId, run.connectionId, run.provider, run.eventId, run.runner],
    );
    return rows[0]!.id;
  });
}

export interface RunTotals {
  requests: number;
  pages: number;
  skipped: number;
  accepted: number;
  late: number;
  duplicate: number;
  rejected: number;
}

/**
 * Closes the runs of `workspaceId` (or of every workspace) still marked running that started more than
 * `olderThanMs` ago (by the database's clock, which stamped them):
 * their outcome was never recorded, because the database was unreachable when the run ended or the process died
 * mid-run. Each becomes failed/internal, and its connection shows the failure unless a later run already
 * recorded an outcome. Nothing else changes: the next poll starts from the cursor the last committed page left.
 * Returns the runs closed.
 */
export async function closeAbandonedPollRuns(sql: Sql, olderThanMs: number, workspaceId?: string): Promise<number> {
  const message = 'the run ended without its outcome being recorded (the database was unreachable or the process stopped); the next poll resumes from the last committed page';
  const { rows } = await sql.query<{ closed: number }>(
    `WITH closed AS (
       UPDATE poll_runs
          SET status = 'failed', error_class = 'internal', error_message = $3, finished_at = date_trunc('milliseconds', now())
        WHERE status = 'running' AND started_at < now() - $1 * interval '1 millisecond' AND ($2::uuid IS NULL OR workspace_id = $2)
        RETURNING workspace_id, connection_id, started_at
     ), latest AS (
       SELECT workspace_id, connection_id, max(started_at) AS started_at FROM closed GROUP BY workspace_id, connection_id
     ), marked AS (
       UPDATE connection_poll_states s
          SET last_error_at = now(), last_error_class = 'internal', last_error_message = $3,
              consecutive_failures = s.consecutive_failures + 1
         FROM latest l
        WHERE s.workspace_id = l.workspace_id AND s.connection_id = l.connection_id
          AND (s.last_success_at IS NULL OR s.last_success_at < l.started_at)
          AND (s.last_error_at IS NULL OR s.last_error_at < l.started_at)
        RETURNING 1
     )
     SELECT (SELECT count(*) FROM closed)::int AS closed`,
    [olderThanMs, workspaceId ?? null, message],
  );
  return rows[0]!.closed;
}

export type PollOutcome =
  /** `confirms`: the poll confirms its connection's vehicles (false while core only shadows the legacy poller). */
  | { status: 'succeeded'; confirms: boolean }
  | {
      status: 'failed';
      errorClass: string;
      message: string;
      nextPollAt: Date | null;
      rateLimitedUntil: Date | null;
      authFailed: boolean;
      /** With `credentials_unreadable`: the fingerprint of the key that failed (see markCredentialsUnreadable). */
      keyFingerprint?: string;
    };

/**
 * A run's outcome, in one transaction: the run record, the connection's health (unless another run holds the
 * connection by now), the claim released, and on success the connection's sync mark, which confirms every vehicle
 * bound to it (the `lastSyncedAt` of DESIGN §8) without touching their rows.
 */
export async function recordPollOutcome(
  db: Database,
  run: { workspaceId: string; connectionId: string; runId: number; claim: string },
  outcome: PollOutcome,
  totals: RunTotals,
  notes: readonly string[] = [],
): Promise<void> {
  const { workspaceId, connectionId } = run;
  const t = totals;
  await db.transaction(async (tx) => {
    await tx.query(
      `UPDATE poll_runs
          SET finished_at = date_trunc('milliseconds', now()), status = $3, error_class = $4, error_message = $5,
              provider_requests = $6, pages = $7, skipped_entities = $8, accepted = $9, late = $10, duplicate = $11, rejected = $12,
              notes = $13::text[]
        WHERE workspace_id = $1 AND id = $2`,
      [
        workspaceId,
        run.runId,
        outcome.status,
        outcome.status === 'failed' ? outcome.errorClass : null,
        outcome.status === 'failed' ? outcome.message : null,
        t.requests,
        t.pages,
        t.skipped,
        t.accepted,
        t.late,
        t.duplicate,
        t.rejected,
        notes.slice(0, 20).map((note) => note.slice(0, 500)),
      ],
    );
    const ours = `(claimed_by = $3 OR claimed_until IS NULL OR claimed_until < now())`;
    if (outcome.status === 'succeeded') {
      const { rowCount } = await tx.query(
        `UPDATE connection_poll_states
            SET last_success_at = now(), consecutive_failures = 0, next_poll_at = NULL, rate_limited_until = NULL,
                auth_failed_at = NULL, claimed_by = NULL, claimed_until = NULL
          WHERE workspace_id = $1 AND connection_id = $2 AND ${ours}`,
        [workspaceId, connectionId, run.claim],
      );
      if (rowCount > 0 && outcome.confirms) await markConnectionSynced(tx, workspaceId, connectionId);
    } else {
      await tx.query(
        `UPDATE connection_poll_states
            SET last_error_at = now(), last_error_class = $4, last_error_message = $5,
                consecutive_failures = consecutive_failures + 1, next_poll_at = $6, rate_limited_until = $7,
                auth_failed_at = CASE WHEN $8::boolean THEN now() ELSE NULL END, claimed_by = NULL, claimed_until = NULL
          WHERE workspace_id = $1 AND connection_id = $2 AND ${ours}`,
        [workspaceId, connectionId, run.claim, outcome.errorClass, outcome.message, outcome.nextPollAt, outcome.rateLimitedUntil, outcome.authFailed],
      );
      if (outcome.errorClass === 'credentials_unreadable' && outcome.keyFingerprint) await markCredentialsUnreadable(tx, workspaceId, connectionId, outcome.keyFingerprint);
    }
  });
}

/** The connection is confirmed with its provider now: every vehicle bound to it counts as synced. One row. */
export async function markConnectionSynced(sql: Sql, workspaceId: string, connectionId: string): Promise<void> {
  await sql.query(
    `INSERT INTO connection_sync_marks (workspace_id, connection_id, confirmed_at) VALUES ($1, $2, now())
     ON CONFLICT (workspace_id, connection_id) DO UPDATE SET confirmed_at = GREATEST(connection_sync_marks.confirmed_at, excluded.confirmed_at)`,
    [workspaceId, connectionId],
  );
}
