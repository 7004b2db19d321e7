/**
 * Workspaces with their telematics policy and cutover state: the shared state every poll and every ingest batch
 * is validated against.
 */
import { randomUUID } from 'node:crypto';
import type { Database, Sql } from '../db/database.ts';
import { writeEvents } from '../events/event-log.ts';
import { DomainError, notFound } from '../errors.ts';
import { iso } from '../time.ts';

export const cutoverModes = ['legacy', 'shadow', 'core'] as const;
/**
 * Who owns a workspace's polling: the legacy poller (`legacy`), the legacy poller while core polls beside it into the
 * shadow store for parity (`shadow`), or core (`core`).
 */
export type CutoverMode = (typeof cutoverModes)[number];

/** When a workspace may go from shadow to core (src/core/cutover/gate.ts). */
export interface CutoverGate {
  /** Parity is judged over this many of the last hours, the current one included. */
  windowHours: number;
  /** Of the legacy poller's readings, the share core's polling also has. */
  minCoveragePct: number;
  /** Of the readings both have, the share whose values agree within the signal's tolerance. */
  minAgreementPct: number;
  /** Two readings of one vehicle and signal are the same reading when observed this close. */
  matchSeconds: number;
}

export interface TelematicsPolicy {
  enabled: boolean;
  pollIntervalSeconds: number;
  freshnessThresholdSeconds: number;
  silentAfterSeconds: number;
  retentionDays: number;
  /** State-of-charge levels whose crossing, up or down, is an event (`fleetwire.vehicle.soc.crossed`). */
  socThresholdsPct: number[];
  /** How long events are kept for replay. */
  eventRetentionDays: number;
  cutoverGate: CutoverGate;
}

export const defaultPolicy: TelematicsPolicy = Object.freeze({
  enabled: true,
  pollIntervalSeconds: 60,
  freshnessThresholdSeconds: 300,
  silentAfterSeconds: 3600,
  retentionDays: 90,
  socThresholdsPct: Object.freeze([20, 80]) as unknown as number[],
  eventRetentionDays: 7,
  cutoverGate: Object.freeze({ windowHours: 24, minCoveragePct: 99, minAgreementPct: 99, matchSeconds: 10 }),
});

export interface Workspace {
  id: string;
  name: string;
  createdAt: string;
  policy: TelematicsPolicy & { updatedAt: string };
  cutover: { mode: CutoverMode; changedAt: string };
}

interface WorkspaceRow {
  id: string;
  name: string;
  created_at: Date;
  enabled: boolean;
  poll_interval_seconds: number;
  freshness_threshold_seconds: number;
  silent_after_seconds: number;
  retention_days: number;
  soc_thresholds_pct: number[];
  event_retention_days: number;
  parity_window_hours: number;
  parity_min_coverage_pct: number;
  parity_min_agreement_pct: number;
  parity_match_seconds: number;
  policy_updated_at: Date;
  mode: CutoverMode;
  changed_at: Date;
}

const selectWorkspace = `
  SELECT w.id, w.name, w.created_at,
         p.enabled, p.poll_interval_seconds, p.freshness_threshold_seconds, p.silent_after_seconds, p.retention_days,
         p.soc_thresholds_pct, p.event_retention_days, p.parity_window_hours, p.parity_min_coverage_pct, p.parity_min_agreement_pct,
         p.parity_match_seconds, p.updated_at AS policy_updated_at, c.mode, c.changed_at
    FROM workspaces w
    JOIN telematics_policies p ON p.workspace_id = w.id
    JOIN cutover_states c ON c.workspace_id = w.id`;

function toWorkspace(row: WorkspaceRow): Workspace {
  return {
    id: row.id,
    name: row.name,
    createdAt: iso(row.created_at),
    policy: {
      enabled: row.enabled,
      pollIntervalSeconds: row.poll_interval_seconds,
      freshnessThresholdSeconds: row.freshness_threshold_seconds,
      silentAfterSeconds: row.silent_after_seconds,
      retentionDays: row.retention_days,
      socThresholdsPct: row.soc_thresholds_pct.map(Number),
      eventRetentionDays: row.event_retention_days,
      cutoverGate: {
        windowHours: row.parity_window_hours,
        minCoveragePct: Number(row.parity_min_coverage_pct),
        minAgreementPct: Number(row.parity_min_agreement_pct),
        matchSeconds: row.parity_match_seconds,
      },
      updatedAt: iso(row.policy_updated_at),
    },
    cutover: { mode: row.mode, changedAt: iso(row.changed_at) },
  };
}

/** Creates a workspace with the default policy and cutover `core` (a new workspace has no legacy poller). */
export async function createWorkspace(
  sql: Sql,
  input: { name: string; policy?: Partial<TelematicsPolicy>; cutover?: CutoverMode },
): Promise<Workspace> {
  const id = randomUUID();
  const policy = { ...defaultPolicy, ...input.policy };
  checkPolicy(policy);
  await sql.query('INSERT INTO workspaces (id, name) VALUES ($1, $2)', [id, input.name]);
  await sql.query(
    `INSERT INTO telematics_policies
       (workspace_id, enabled, poll_interval_seconds, freshness_threshold_seconds, silent_after_seconds, retention_days,
        soc_thresholds_pct, event_retention_days, parity_window_hours, parity_min_coverage_pct, parity_min_agreement_pct,
        parity_match_seconds)
     VALUES ($1, $2, $3, $4, $5, $6, $7::float8[], $8, $9, $10, $11, $12)`,
    policyParams(id, policy),
  );
  await sql.query('INSERT INTO cutover_states (workspace_id, mode) VALUES ($1, $2)', [id, input.cutover ?? 'core']);
  return getWorkspace(sql, id);
}

export async function listWorkspaces(sql: Sql): Promise<Workspace[]> {
  const { rows } = await sql.query<WorkspaceRow>(`${selectWorkspace} ORDER BY w.name, w.id`);
  return rows.map(toWorkspace);
}

export async function findWorkspace(sql: Sql, id: string): Promise<Workspace | undefined> {
  const { rows } = await sql.query<WorkspaceRow>(`${selectWorkspace} WHERE w.id = $1`, [id]);
  return rows[0] && toWorkspace(rows[0]);
}

export async function getWorkspace(sql: Sql, id: string): Promise<Workspace> {
  const workspace = await findWorkspace(sql, id);
  if (!workspace) throw notFound('workspace', id);
  return workspace;
}

function checkPolicy(policy: TelematicsPolicy): void {
  if (policy.silentAfterSeconds < policy.freshnessThresholdSeconds) {
    throw new DomainError(
      'invalid',
      'invalid_policy',
      'silentAfterSeconds must be at least freshnessThresholdSeconds: a vehicle is silent only while its sync is fresh',
    );
  }
}

/** A policy as the parameters $1..$12 of its insert and its update, in column order. */
function policyParams(workspaceId: string, policy: TelematicsPolicy): unknown[] {
  return [
    workspaceId,
    policy.enabled,
    policy.pollIntervalSeconds,
    policy.freshnessThresholdSeconds,
    policy.silentAfterSeconds,
    policy.retentionDays,
    [...policy.socThresholdsPct],
    policy.eventRetentionDays,
    policy.cutoverGate.windowHours,
    policy.cutoverGate.minCoveragePct,
    policy.cutoverGate.minAgreementPct,
    policy.cutoverGate.matchSeconds,
  ];
}

type Defaulted = 'socThresholdsPct' | 'eventRetentionDays' | 'cutoverGate';

/** Replaces a workspace's policy; the event and cutover-gate settings left out take their defaults. */
export async function putTelematicsPolicy(
  db: Database,
  workspaceId: string,
  input: Omit<TelematicsPolicy, Defaulted> & Partial<Pick<TelematicsPolicy, Defaulted>>,
): Promise<Workspace> {
  const policy: TelematicsPolicy = {
    ...input,
    socThresholdsPct: input.socThresholdsPct ?? defaultPolicy.socThresholdsPct,
    eventRetentionDays: input.eventRetentionDays ?? defaultPolicy.eventRetentionDays,
    cutoverGate: input.cutoverGate ?? defaultPolicy.cutoverGate,
  };
  checkPolicy(policy);
  await db.transaction(async (tx) => {
    await lockIngestState(tx, ['telematics_policies']);
    const { rowCount } = await tx.query(
      `UPDATE telematics_policies
          SET enabled = $2, poll_interval_seconds = $3, freshness_threshold_seconds = $4,
              silent_after_seconds = $5, retention_days = $6, soc_thresholds_pct = $7::float8[], event_retention_days = $8,
              parity_window_hours = $9, parity_min_coverage_pct = $10, parity_min_agreement_pct = $11, parity_match_seconds = $12,
              updated_at = now()
        WHERE workspace_id = $1`,
      policyParams(workspaceId, policy),
    );
    if (rowCount === 0) throw notFound('workspace', workspaceId);
  });
  return getWorkspace(db, workspaceId);
}

/**
 * Takes tables whose rows every ingest batch locks `FOR SHARE` (the policy and cutover of each workspace it names,
 * a stream process's leases) in EXCLUSIVE mode until the transaction ends, before changing such rows. A row lock
 * would starve behind a busy workspace: its batches overlap, and a new `FOR SHARE` joins those already held
 * without queueing behind the writer that waits for them all to end. The table lock queues every new batch behind
 * it and waits only for those running, so ingest pauses, for every workspace, as long as the longest batch in
 * flight and the few statements after this: keep them few.
 */
export async function lockIngestState(tx: Sql, tables: readonly ('telematics_policies' | 'cutover_states' | 'stream_leases')[]): Promise<void> {
  // Named in ingest's order (policy, cutover, leases) and taken one after the other: one order everywhere, no circle.
  await tx.query(`LOCK TABLE ${tables.join(', ')} IN EXCLUSIVE MODE`);
}

/**
 * Renames a workspace and turns its telematics on or off (the policy's `enabled`, the one switch the poll path,
 * the stream directory, ingest and health all read). Turning it off waits for the ingest batches judged while it
 * was on: once this returns, nothing of the workspace is accepted.
 */
export async function updateWorkspace(db: Database, workspaceId: string, changes: { name?: string | undefined; enabled?: boolean | undefined }): Promise<Workspace> {
  const { rowCount } = await db.query('UPDATE workspaces SET name = COALESCE($2, name) WHERE id = $1', [workspaceId, changes.name ?? null]);
  if (rowCount === 0) throw notFound('workspace', workspaceId);
  if (changes.enabled !== undefined && !(await setTelematicsEnabled(db, workspaceId, changes.enabled))) throw notFound('workspace', workspaceId);
  return getWorkspace(db, workspaceId);
}

/**
 * Sets the policy's `enabled` in a transaction of its own (committed, it is what every later batch reads); its
 * `updatedAt` moves only when it changes. False when the workspace does not exist.
 */
export async function setTelematicsEnabled(db: Database, workspaceId: string, enabled: boolean): Promise<boolean> {
  const { rows } = await db.query<{ enabled: boolean }>('SELECT enabled FROM telematics_policies WHERE workspace_id = $1', [workspaceId]);
  if (!rows[0]) return false;
  if (rows[0].enabled === enabled) return true;
  return db.transaction(async (tx) => {
    await lockIngestState(tx, ['telematics_policies']);
    const { rowCount } = await tx.query('UPDATE telematics_policies SET enabled = $2, updated_at = now() WHERE workspace_id = $1', [workspaceId, enabled]);
    return rowCount > 0;
  });
}

/** Who changed a cutover and why, as the transition records it. */
export interface CutoverChange {
  actor: string;
  reason?: string | null;
  forced?: boolean;
  /** The parity the change was judged on (a gated change to core). */
  parity?: unknown;
}

/**
 * Sets which poller owns a workspace. A change is recorded (cutover_transitions: who, when, from, to, why) and is an
 * event (`fleetwire.workspace.cutover.changed`), in one transaction with it; setting the mode it has changes nothing.
 * `check` runs inside that transaction with the mode found (locked), before anything changes: the gate to core
 * (src/core/cutover/cutover.ts) judges parity there.
 *
 * Leaving `core` owes the workspace a closing poll (`closing_poll_generation`, the generation before the change) when
 * core has committed a feed cursor of one of its enabled poll connections: the scheduler and the poll runner run it
 * once, under that generation, so what was observed up to the change lands as owned readings. Any other change
 * clears what is owed, so a closing poll never runs after the cutover changed again.
 */
export async function putCutover(
  db: Database,
  workspaceId: string,
  mode: CutoverMode,
  change: CutoverChange = { actor: 'system' },
  check?: (tx: Sql, previous: CutoverMode) => Promise<CutoverChange | undefined>,
): Promise<Workspace> {
  const current = await db.query<{ mode: CutoverMode }>('SELECT mode FROM cutover_states WHERE workspace_id = $1', [workspaceId]);
  if (current.rows[0]?.mode === mode) return getWorkspace(db, workspaceId);
  await db.transaction(async (tx) => {
    await lockIngestState(tx, ['cutover_states']);
    const { rows } = await tx.query<{ mode: CutoverMode }>('SELECT mode FROM cutover_states WHERE workspace_id = $1 FOR UPDATE', [workspaceId]);
    const previous = rows[0]?.mode;
    if (previous === undefined) throw notFound('workspace', workspaceId);
    if (previous === mode) return;
    const judged = (check ? await check(tx, previous) : undefined) ?? change;
    await tx.query(
      `UPDATE cutover_states
          SET mode = $2, previous_mode = $3, generation = generation + 1, changed_at = now(),
              closing_poll_generation = CASE WHEN $3 = 'core' AND EXISTS (
                SELECT 1 FROM provider_connections pc
                 WHERE pc.workspace_id = $1 AND pc.transport = 'poll' AND pc.enabled AND pc.feed_cursor IS NOT NULL) THEN generation END
        WHERE workspace_id = $1`,
      [workspaceId, mode, previous],
    );
    await tx.query(
      `INSERT INTO cutover_transitions (workspace_id, id, actor, from_mode, to_mode, reason, forced, parity)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
      [workspaceId, randomUUID(), judged.actor, previous, mode, judged.reason ?? null, judged.forced === true, judged.parity === undefined ? null : JSON.stringify(judged.parity)],
    );
    await writeEvents(tx, [
      {
        id: randomUUID(),
        workspaceId,
        subject: 'workspace',
        type: 'fleetwire.workspace.cutover.changed',
        time: new Date().toISOString(),
        data: { workspaceId, mode, previousMode: previous, actor: judged.actor, reason: judged.reason ?? null, forced: judged.forced === true },
      },
    ]);
  });
  return getWorkspace(db, workspaceId);
}
