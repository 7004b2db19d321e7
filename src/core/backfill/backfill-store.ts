/**
 * The SQL of backfill jobs: enqueueing (idempotent by connection, devices and period), the bind trigger's jobs,
 * claiming by lease (`FOR UPDATE SKIP LOCKED`, so any number of core processes share the queue), progress fenced by
 * the lease, outcomes, and the read side. Lease times are taken from the worker's clock, passed in, so a lease and
 * the clock a test moves agree.
 */
import { randomUUID } from 'node:crypto';
import type { Database, Sql } from '../db/database.ts';
import { iso, isoOrNull } from '../time.ts';

export const backfillStatuses = ['queued', 'running', 'succeeded', 'failed', 'unsupported'] as const;
export type BackfillStatus = (typeof backfillStatuses)[number];
export type BackfillTrigger = 'request' | 'bind';

/** A job as the API answers it. */
export interface BackfillJobView {
  id: string;
  connectionId: string;
  /** The external ids asked for; null: every device bound to the connection. */
  devices: string[] | null;
  from: string;
  to: string;
  trigger: BackfillTrigger;
  status: BackfillStatus;
  progress: {
    windowsDone: number;
    windowsTotal: number;
    readingsFetched: number;
    readingsAccepted: number;
    readingsLate: number;
    readingsDuplicate: number;
    readingsRejected: number;
    providerRequests: number;
  };
  attempts: number;
  lastErrorClass: string | null;
  lastErrorMessage: string | null;
  notBefore: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

interface JobRow {
  workspace_id: string;
  id: string;
  connection_id: string;
  devices: string[] | null;
  from_at: Date;
  to_at: Date;
  trigger: BackfillTrigger;
  status: BackfillStatus;
  windows_total: number;
  windows_done: number;
  window_cursor: unknown;
  readings_fetched: string | number;
  readings_accepted: string | number;
  readings_late: string | number;
  readings_duplicate: string | number;
  readings_rejected: string | number;
  provider_requests: number;
  attempts: number;
  last_error_class: string | null;
  last_error_message: string | null;
  not_before: Date | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

const jobColumns = `workspace_id, id, connection_id, devices, from_at, to_at, trigger, status, windows_total, windows_done,
  window_cursor, readings_fetched, readings_accepted, readings_late, readings_duplicate, readings_rejected,
  provider_requests, attempts, last_error_class, last_error_message, not_before, created_at, updated_at, finished_at`;

function viewOf(row: JobRow): BackfillJobView {
  return {
    id: row.id,
    connectionId: row.connection_id,
    devices: row.devices,
    from: iso(row.from_at),
    to: iso(row.to_at),
    trigger: row.trigger,
    status: row.status,
    progress: {
      windowsDone: row.windows_done,
      windowsTotal: row.windows_total,
      readingsFetched: Number(row.readings_fetched),
      readingsAccepted: Number(row.readings_accepted),
      readingsLate: Number(row.readings_late),
      readingsDuplicate: Number(row.readings_duplicate),
      readingsRejected: Number(row.readings_rejected),
      providerRequests: row.provider_requests,
    },
    attempts: row.attempts,
    lastErrorClass: row.last_error_class,
    lastErrorMessage: row.last_error_message,
    notBefore: isoOrNull(row.not_before),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    finishedAt: isoOrNull(row.finished_at),
  };
}

/** How many windows of `windowMs` cover [fromMs, toMs] (both ends included); at least one. */
export function windowCount(fromMs: number, toMs: number, windowMs: number): number {
  return Math.max(1, Math.ceil((toMs - fromMs + 1) / windowMs));
}

export interface NewBackfillJob {
  workspaceId: string;
  connectionId: string;
  /** Sorted and distinct; null for every bound device. */
  devices: readonly string[] | null;
  fromMs: number;
  toMs: number;
  /** Whether the request named its `to` (an open-ended request is the same request later). */
  toRequested: boolean;
  trigger: BackfillTrigger;
  status: 'queued' | 'unsupported';
  windowsTotal: number;
  /** With `unsupported`: why, for the operator. */
  message?: string;
}

const devicesKey = (devices: readonly string[] | null) => (devices === null ? '' : devices.join('\n'));

/**
 * Inserts the job, or answers the one already there for the same connection, devices and period (unless that one
 * failed: the partial unique index leaves failed jobs out, so asking again starts afresh). `created` says which.
 */
export async function enqueueBackfill(sql: Sql, job: NewBackfillJob): Promise<{ job: BackfillJobView; created: boolean }> {
  const toKey = job.toRequested ? new Date(job.toMs) : 'infinity';
  const finished = job.status === 'unsupported';
  const { rows } = await sql.query<JobRow>(
    `INSERT INTO backfill_jobs (workspace_id, id, connection_id, devices, devices_key, from_at, to_at, to_requested, to_key,
                                trigger, status, windows_total, last_error_message, finished_at)
     VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9::timestamptz, $10, $11, $12, $13, CASE WHEN $14::boolean THEN now() END)
     ON CONFLICT (workspace_id, connection_id, devices_key, from_at, to_key) WHERE status <> 'failed' DO NOTHING
     RETURNING ${jobColumns}`,
    [
      job.workspaceId,
      randomUUID(),
      job.connectionId,
      job.devices,
      devicesKey(job.devices),
      new Date(job.fromMs),
      new Date(job.toMs),
      job.toRequested,
      toKey,
      job.trigger,
      job.status,
      finished ? 0 : job.windowsTotal,
      job.message ?? null,
      finished,
    ],
  );
  if (rows[0]) return { job: viewOf(rows[0]), created: true };
  const { rows: existing } = await sql.query<JobRow>(
    `SELECT ${jobColumns} FROM backfill_jobs
      WHERE workspace_id = $1 AND connection_id = $2 AND devices_key = $3 AND from_at = $4 AND to_key = $5::timestamptz AND status <> 'failed'`,
    [job.workspaceId, job.connectionId, devicesKey(job.devices), new Date(job.fromMs), toKey],
  );
  return { job: viewOf(existing[0]!), created: false };
}

export async function getBackfillJob(sql: Sql, workspaceId: string, jobId: string): Promise<BackfillJobView | undefined> {
  const { rows } = await sql.query<JobRow>(`SELECT ${jobColumns} FROM backfill_jobs WHERE workspace_id = $1 AND id = $2`, [workspaceId, jobId]);
  return rows[0] ? viewOf(rows[0]) : undefined;
}

/** Newest first; `connectionId` and `status` narrow the list. */
export async function listBackfillJobs(
  sql: Sql,
  workspaceId: string,
  filter: { connectionId?: string | undefined; status?: BackfillStatus | undefined; limit: number },
): Promise<BackfillJobView[]> {
  const { rows } = await sql.query<JobRow>(
    `SELECT ${jobColumns} FROM backfill_jobs
      WHERE workspace_id = $1 AND ($2::uuid IS NULL OR connection_id = $2) AND ($3::text IS NULL OR status = $3)
      ORDER BY created_at DESC, id LIMIT $4`,
    [workspaceId, filter.connectionId ?? null, filter.status ?? null, filter.limit],
  );
  return rows.map(viewOf);
}

/** A claimed job with what the worker needs of its connection. */
export interface ClaimedBackfill {
  workspaceId: string;
  id: string;
  connectionId: string;
  provider: string;
  transport: 'poll' | 'stream';
  baseUrl: string;
  credentialsCiphertext: string;
  options: unknown;
  connectionEnabled: boolean;
  devices: string[] | null;
  fromMs: number;
  toMs: number;
  windowsTotal: number;
  windowsDone: number;
  windowCursor: unknown;
  attempts: number;
}

/**
 * Takes the oldest job that is due (queued and past its `not_before`), or a running one whose holder let its lease
 * lapse (a process that died mid-job), and leases it to `holder`. Rows another process is claiming are skipped, not
 * waited for. Null when nothing is due.
 */
export async function claimBackfillJob(db: Database, claim: { holder: string; leaseMs: number; nowMs: number }): Promise<ClaimedBackfill | null> {
  return db.transaction(async (tx) => {
    const now = new Date(claim.nowMs);
    const { rows } = await tx.query<JobRow>(
      `WITH next AS (
         SELECT workspace_id, id FROM backfill_jobs
          WHERE (status = 'queued' AND (not_before IS NULL OR not_before <= $3))
             OR (status = 'running' AND lease_until < $3)
          ORDER BY created_at, id
          LIMIT 1
          FOR UPDATE SKIP LOCKED
       )
       UPDATE backfill_jobs j
          SET status = 'running', lease_holder = $1, lease_until = $3::timestamptz + $2 * interval '1 millisecond',
              attempts = j.attempts + 1, not_before = NULL, updated_at = now()
         FROM next
        WHERE j.workspace_id = next.workspace_id AND j.id = next.id
       RETURNING ${jobColumns.replace(/\w+/g, (column) => `j.${column}`)}`,
      [claim.holder, claim.leaseMs, now],
    );
    const job = rows[0];
    if (!job) return null;
    const { rows: connections } = await tx.query<{ provider: string; transport: 'poll' | 'stream'; base_url: string; credentials_ciphertext: string; options: unknown; enabled: boolean }>(
      'SELECT provider, transport, base_url, credentials_ciphertext, options, enabled FROM provider_connections WHERE workspace_id = $1 AND id = $2',
      [job.workspace_id, job.connection_id],
    );
    // The foreign key removes a connection's jobs with it, so the connection is there.
    const connection = connections[0]!;
    return {
      workspaceId: job.workspace_id,
      id: job.id,
      connectionId: job.connection_id,
      provider: connection.provider,
      transport: connection.transport,
      baseUrl: connection.base_url,
      credentialsCiphertext: connection.credentials_ciphertext,
      options: connection.options,
      connectionEnabled: connection.enabled,
      devices: job.devices,
      fromMs: job.from_at.getTime(),
      toMs: job.to_at.getTime(),
      windowsTotal: job.windows_total,
      windowsDone: job.windows_done,
      windowCursor: job.window_cursor,
      attempts: job.attempts,
    };
  });
}

/** The lease a worker holds on one job: every write of the job is fenced by it. */
export interface BackfillLease {
  workspaceId: string;
  jobId: string;
  holder: string;
  leaseMs: number;
}

export class BackfillLeaseLostError extends Error {
  constructor() {
    super('another worker holds this backfill job now; this one stops without writing');
    this.name = 'BackfillLeaseLostError';
  }
}

export interface ProgressDelta {
  windowsDone: number;
  windowCursor: unknown;
  fetched: number;
  accepted: number;
  late: number;
  duplicate: number;
  rejected: number;
  requests: number;
}

/**
 * Records a page's progress and renews the lease, in the caller's transaction (the one that wrote the page's
 * readings). Throws BackfillLeaseLostError when the lease went to another worker, which rolls the page back.
 */
export async function recordBackfillProgress(tx: Sql, lease: BackfillLease, nowMs: number, delta: ProgressDelta): Promise<void> {
  const { rowCount } = await tx.query(
    `UPDATE backfill_jobs
        SET windows_done = $4, window_cursor = $5::jsonb, readings_fetched = readings_fetched + $6,
            readings_accepted = readings_accepted + $7, readings_late = readings_late + $8,
            readings_duplicate = readings_duplicate + $9, readings_rejected = readings_rejected + $10,
            provider_requests = provider_requests + $11, lease_until = $12::timestamptz + $13 * interval '1 millisecond',
            updated_at = now()
      WHERE workspace_id = $1 AND id = $2 AND lease_holder = $3 AND status = 'running'`,
    [
      lease.workspaceId,
      lease.jobId,
      lease.holder,
      delta.windowsDone,
      JSON.stringify(delta.windowCursor ?? null),
      delta.fetched,
      delta.accepted,
      delta.late,
      delta.duplicate,
      delta.rejected,
      delta.requests,
      new Date(nowMs),
      lease.leaseMs,
    ],
  );
  if (rowCount !== 1) throw new BackfillLeaseLostError();
}

/** Extends the lease without progress (before waiting out a provider's Retry-After). */
export async function renewBackfillLease(sql: Sql, lease: BackfillLease, nowMs: number, extraMs = 0): Promise<void> {
  const { rowCount } = await sql.query(
    `UPDATE backfill_jobs SET lease_until = $4::timestamptz + $5 * interval '1 millisecond', updated_at = now()
      WHERE workspace_id = $1 AND id = $2 AND lease_holder = $3 AND status = 'running'`,
    [lease.workspaceId, lease.jobId, lease.holder, new Date(nowMs), lease.leaseMs + extraMs],
  );
  if (rowCount !== 1) throw new BackfillLeaseLostError();
}

export type BackfillOutcome =
  | { status: 'succeeded' }
  | { status: 'failed' | 'unsupported'; errorClass: string; message: string }
  /** Back in the queue until `notBeforeMs` (a Retry-After, a back-off); the lease is let go. */
  | { status: 'queued'; errorClass: string; message: string; notBeforeMs: number };

/** The job's outcome, if this worker still holds it; false when the lease was lost (nothing written). */
export async function finishBackfillJob(sql: Sql, lease: BackfillLease, outcome: BackfillOutcome, requests = 0): Promise<boolean> {
  const failed = outcome.status !== 'succeeded';
  const { rowCount } = await sql.query(
    `UPDATE backfill_jobs
        SET status = $4, last_error_class = $5, last_error_message = $6, not_before = $7,
            provider_requests = provider_requests + $8,
            lease_holder = NULL, lease_until = NULL, updated_at = now(),
            finished_at = CASE WHEN $4 IN ('succeeded', 'failed', 'unsupported') THEN now() END,
            window_cursor = CASE WHEN $4 = 'succeeded' THEN NULL ELSE window_cursor END
      WHERE workspace_id = $1 AND id = $2 AND lease_holder = $3 AND status = 'running'`,
    [
      lease.workspaceId,
      lease.jobId,
      lease.holder,
      outcome.status,
      failed ? outcome.errorClass : null,
      failed ? outcome.message.slice(0, 500) : null,
      outcome.status === 'queued' ? new Date(outcome.notBeforeMs) : null,
      requests,
    ],
  );
  return rowCount === 1;
}

/**
 * The bind trigger: one job per newly bound device, from `lookbackMs` before now to now (the database's clock, the
 * one that stamps the binding), in the caller's transaction. `historyWindowMs` says, per provider, the window length
 * of its history path; a provider without one gets its job as `unsupported`, visible, not an error.
 */
export async function enqueueBindBackfills(
  sql: Sql,
  workspaceId: string,
  devices: readonly { connectionId: string; externalId: string }[],
  lookbackMs: number,
  historyWindowMs: (provider: string) => number | undefined,
): Promise<void> {
  if (devices.length === 0 || lookbackMs <= 0) return;
  const { rows } = await sql.query<{ id: string; provider: string; now: Date }>(
    'SELECT id, provider, now() AS now FROM provider_connections WHERE workspace_id = $1 AND id = ANY($2::uuid[])',
    [workspaceId, [...new Set(devices.map((d) => d.connectionId))]],
  );
  const providers = new Map(rows.map((row) => [row.id, row.provider]));
  const nowMs = rows[0]?.now.getTime();
  if (nowMs === undefined) return;
  for (const device of devices) {
    const provider = providers.get(device.connectionId);
    if (provider === undefined) continue;
    const windowMs = historyWindowMs(provider);
    await enqueueBackfill(sql, {
      workspaceId,
      connectionId: device.connectionId,
      devices: [device.externalId],
      fromMs: nowMs - lookbackMs,
      toMs: nowMs,
      toRequested: true,
      trigger: 'bind',
      ...(windowMs === undefined
        ? { status: 'unsupported', windowsTotal: 0, message: `provider ${provider} has no history path; the device's readings start with the next poll or stream` }
        : { status: 'queued', windowsTotal: windowCount(nowMs - lookbackMs, nowMs, windowMs) }),
    });
  }
}
