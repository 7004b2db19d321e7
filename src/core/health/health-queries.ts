/**
 * Health read side: a workspace's freshness counts, its connections' health and the roll-up (DESIGN §8), all
 * computed from stored state at query time against the caller's clock.
 */
import type { Sql } from '../db/database.ts';
import type { CutoverMode } from '../registry/workspaces.ts';
import { pollStateColumns, readPollState, type PollStateRow } from '../registry/connections.ts';
import {
  connectionHealth,
  freshRatio,
  schedulerState,
  vehicleConfirmationsCte,
  vehicleStatusSql,
  vehicleSyncFromConfirmations,
  workspaceHealth,
  type ConnectionFacts,
  type ConnectionHealth,
  type HealthReason,
  type SchedulerState,
  type VehicleStatus,
  type WorkspaceStatus,
} from './rules.ts';
import { connectionVerdicts, countVehiclesByReason, type VehicleReasonCode } from './vehicle-reasons.ts';
import { emptyOnboardingFacts, loadOnboardingFacts, rejectionShareReason, type OnboardingFacts } from './onboarding-health.ts';

export interface ConnectionHealthView {
  id: string;
  provider: string;
  transport: 'poll' | 'stream';
  label: string;
  status: ConnectionHealth['status'];
  detail: string;
  lastSuccessAt: string | null;
  lastError: { class: string; message: string; at: string | null } | null;
  nextAttemptAt: string | null;
  /** `legacy_poller` for a poll connection of a workspace in `legacy` cutover: `lastSuccessAt` is its last accepted update. */
  owner: 'core' | 'legacy_poller';
  /** A stream connection's sockets, open of needed. */
  sockets: { connected: number; expected: number } | null;
  /** A core-owned poll connection's last scheduled event. */
  lastScheduledAt: string | null;
}

export interface WorkspaceHealthView {
  workspaceId: string;
  name: string;
  status: WorkspaceStatus;
  reasons: HealthReason[];
  freshness: {
    thresholdSeconds: number;
    silentAfterSeconds: number;
    counts: Record<VehicleStatus, number>;
    freshRatio: number | null;
    /** Vehicles that are not fresh, by the reason they are behind. */
    byReason: Partial<Record<VehicleReasonCode, number>>;
  };
  /**
   * The workspace's scheduled events: `scheduler_silent` when none came for two poll intervals while core polls it,
   * `not_used` when core polls nothing of it (cutover legacy, or no enabled poll connection), `disabled` with it.
   */
  scheduler: { status: 'ok' | 'scheduler_silent' | 'not_used' | 'disabled'; lastScheduledAt: string | null; silentAfterSeconds: number };
  connections: ConnectionHealthView[];
  cutover: { mode: CutoverMode; changedAt: string };
  checkedAt: string;
  /** The last hour's readings and rejections (`rejections_high` past a share), and the devices waiting to be bound. */
  ingest: OnboardingFacts['ingest'];
  discoveredDevices: OnboardingFacts['discoveredDevices'];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const ms = (value: Date | string | null | undefined) => (value === null || value === undefined ? null : new Date(value).getTime());

interface PolicyRow {
  id: string;
  name: string;
  enabled: boolean;
  freshness_threshold_seconds: number;
  silent_after_seconds: number;
  poll_interval_seconds: number;
  mode: CutoverMode;
  changed_at: Date;
  last_event_at: Date | null;
  /** The latest of the workspace's creation and its last policy or cutover change: silence is counted from no earlier. */
  settled_at: Date;
  core_polls: boolean;
}

/** The scheduler mark and what silence is counted from, of a workspace row `w` with its policy `p` and cutover row `cutover`. */
const schedulerColumns = (cutover: string) => `sm.last_event_at, GREATEST(w.created_at, p.updated_at, ${cutover}.changed_at) AS settled_at`;
const schedulerJoin = 'LEFT JOIN workspace_scheduler_marks sm ON sm.workspace_id = w.id';

async function loadPolicies(sql: Sql, workspaceIds: readonly string[] | 'all'): Promise<PolicyRow[]> {
  const { rows } = await sql.query<PolicyRow>(
    `SELECT w.id, w.name, p.enabled, p.freshness_threshold_seconds, p.silent_after_seconds, p.poll_interval_seconds,
            c.mode, c.changed_at, ${schedulerColumns('c')},
            c.mode IN ('core', 'shadow') AND EXISTS (SELECT 1 FROM provider_connections pc
                                         WHERE pc.workspace_id = w.id AND pc.transport = 'poll' AND pc.enabled) AS core_polls
       FROM workspaces w
       JOIN telematics_policies p ON p.workspace_id = w.id
       JOIN cutover_states c ON c.workspace_id = w.id
       ${schedulerJoin}
      WHERE $1::uuid[] IS NULL OR w.id = ANY($1::uuid[])
      ORDER BY w.name, w.id`,
    [workspaceIds === 'all' ? null : workspaceIds],
  );
  return rows;
}

function schedulerOf(row: { last_event_at: Date | null; settled_at: Date; poll_interval_seconds: number }, nowMs: number): SchedulerState {
  return schedulerState(ms(row.last_event_at), row.settled_at.getTime(), row.poll_interval_seconds, nowMs);
}

/** Active vehicles per workspace and freshness status, at `now`. */
export async function countVehiclesByStatus(
  sql: Sql,
  workspaceIds: readonly string[] | 'all',
  nowMs: number,
): Promise<Map<string, Record<VehicleStatus, number>>> {
  const { rows } = await sql.query<{ workspace_id: string; status: VehicleStatus; n: number }>(
    `WITH ${vehicleConfirmationsCte('($1::uuid[] IS NULL OR d.workspace_id = ANY($1::uuid[]))')}
     SELECT v.workspace_id, ${vehicleStatusSql('$2::timestamptz')} AS status, count(*)::int AS n
       FROM vehicles v
       JOIN telematics_policies p ON p.workspace_id = v.workspace_id
       ${vehicleSyncFromConfirmations}
      WHERE v.active AND ($1::uuid[] IS NULL OR v.workspace_id = ANY($1::uuid[]))
      GROUP BY 1, 2`,
    [workspaceIds === 'all' ? null : workspaceIds, new Date(nowMs).toISOString()],
  );
  const counts = new Map<string, Record<VehicleStatus, number>>();
  for (const row of rows) {
    const entry = counts.get(row.workspace_id) ?? { fresh: 0, stale: 0, silent: 0, never: 0 };
    entry[row.status] = row.n;
    counts.set(row.workspace_id, entry);
  }
  return counts;
}

/** Every connection's health, by workspace, at `now`. */
export async function loadConnectionHealth(
  sql: Sql,
  workspaceIds: readonly string[] | 'all',
  nowMs: number,
): Promise<Map<string, ConnectionHealthView[]>> {
  const { rows } = await sql.query<
    PollStateRow & {
      workspace_id: string;
      id: string;
      provider: string;
      transport: 'poll' | 'stream';
      label: string;
      enabled: boolean;
      credentials_unreadable_at: Date | null;
      poll_interval_seconds: number;
      s_connected: boolean | null;
      s_last_message_at: Date | null;
      s_last_error_class: string | null;
      s_last_error: string | null;
      s_last_error_at: Date | null;
      s_next_reconnect_at: Date | null;
      s_reported_at: Date | null;
      s_sockets: number | null;
      s_sockets_open: number | null;
      workspace_enabled: boolean;
      freshness_threshold_seconds: number;
      mode: CutoverMode;
      last_event_at: Date | null;
      settled_at: Date;
      legacy_accepted_at: Date | null;
    }
  >(
    // A legacy-owned connection's freshness is its legacy poller's: the newest snapshot value it had accepted, looked
    // up only for poll connections of workspaces in legacy cutover.
    `SELECT c.workspace_id, c.id, c.provider, c.transport, c.label, c.enabled, c.credentials_unreadable_at, p.poll_interval_seconds, ${pollStateColumns},
            t.connected AS s_connected, t.last_message_at AS s_last_message_at, t.last_error_class AS s_last_error_class,
            t.last_error AS s_last_error, t.last_error_at AS s_last_error_at, t.next_reconnect_at AS s_next_reconnect_at,
            t.reported_at AS s_reported_at, t.sockets AS s_sockets, t.sockets_open AS s_sockets_open,
            p.enabled AS workspace_enabled, p.freshness_threshold_seconds, cu.mode, ${schedulerColumns('cu')},
            CASE WHEN cu.mode IN ('legacy', 'shadow') AND c.transport = 'poll' THEN
              (SELECT max(ss.updated_at) FROM signal_snapshot ss
                WHERE ss.workspace_id = c.workspace_id AND ss.connection_id = c.id AND ss.source = 'legacy_poll') END AS legacy_accepted_at
       FROM provider_connections c
       JOIN workspaces w ON w.id = c.workspace_id
       JOIN telematics_policies p ON p.workspace_id = c.workspace_id
       JOIN cutover_states cu ON cu.workspace_id = c.workspace_id
       ${schedulerJoin}
       LEFT JOIN connection_poll_states s ON s.workspace_id = c.workspace_id AND s.connection_id = c.id
       LEFT JOIN stream_connection_states t ON t.workspace_id = c.workspace_id AND t.connection_id = c.id
      WHERE $1::uuid[] IS NULL OR c.workspace_id = ANY($1::uuid[])
      ORDER BY c.label, c.id`,
    [workspaceIds === 'all' ? null : workspaceIds],
  );
  const byWorkspace = new Map<string, ConnectionHealthView[]>();
  for (const row of rows) {
    const facts: ConnectionFacts = {
      enabled: row.enabled,
      workspaceEnabled: row.workspace_enabled,
      owner: row.mode === 'core' ? 'core' : 'legacy_poller',
      shadow: row.mode === 'shadow',
      legacyLastAcceptedAt: ms(row.legacy_accepted_at),
      freshnessThresholdSeconds: row.freshness_threshold_seconds,
      scheduler: schedulerOf(row, nowMs),
      transport: row.transport,
      credentialsUnreadableAt: ms(row.credentials_unreadable_at),
      pollIntervalSeconds: row.poll_interval_seconds,
      poll: readPollState(row, ms),
      stream:
        row.s_reported_at === null
          ? null
          : {
              connected: row.s_connected === true,
              lastMessageAt: ms(row.s_last_message_at),
              lastErrorClass: row.s_last_error_class,
              lastError: row.s_last_error,
              lastErrorAt: ms(row.s_last_error_at),
              nextReconnectAt: ms(row.s_next_reconnect_at),
              reportedAt: ms(row.s_reported_at)!,
              sockets: row.s_sockets ?? 0,
              socketsOpen: row.s_sockets_open ?? 0,
            },
    };
    const health = connectionHealth(facts, nowMs);
    const list = byWorkspace.get(row.workspace_id) ?? [];
    list.push({
      id: row.id,
      provider: row.provider,
      transport: row.transport,
      label: row.label,
      status: health.status,
      detail: health.detail,
      lastSuccessAt: iso(health.lastSuccessAt),
      lastError: health.lastError ? { class: health.lastError.class, message: health.lastError.message, at: iso(health.lastError.at) } : null,
      nextAttemptAt: iso(health.nextAttemptAt),
      owner: health.owner,
      sockets: health.sockets,
      lastScheduledAt: iso(health.lastScheduledAt),
    });
    byWorkspace.set(row.workspace_id, list);
  }
  return byWorkspace;
}

/** Health of the given workspaces (or all), in name order. */
/** A workspace rejecting too much of what arrives is degraded (unless it is worse off already, or disabled). */
function withRejectionShare(rollUp: { status: WorkspaceStatus; reasons: HealthReason[] }, facts: OnboardingFacts): void {
  const reason = rollUp.status === 'disabled' ? null : rejectionShareReason(facts.ingest, facts.discoveredDevices.pending);
  if (!reason) return;
  rollUp.reasons.push(reason);
  if (rollUp.status === 'ok') rollUp.status = 'degraded';
}

export async function loadWorkspaceHealth(sql: Sql, workspaceIds: readonly string[] | 'all', nowMs: number): Promise<WorkspaceHealthView[]> {
  const [policies, connections] = await Promise.all([loadPolicies(sql, workspaceIds), loadConnectionHealth(sql, workspaceIds, nowMs)]);
  // The vehicles' reasons follow from their connections' health, judged first.
  const [fleet, onboarding] = await Promise.all([
    countVehiclesByReason(sql, workspaceIds, connectionVerdicts(connections.values()), nowMs),
    loadOnboardingFacts(sql, workspaceIds, nowMs),
  ]);
  return policies.map((policy) => {
    const freshness = fleet.get(policy.id) ?? { counts: { fresh: 0, stale: 0, silent: 0, never: 0 }, byReason: {} };
    const vehicleCounts = freshness.counts;
    const workspaceConnections = connections.get(policy.id) ?? [];
    const scheduler = schedulerOf(policy, nowMs);
    const schedulerApplies = policy.enabled && policy.core_polls;
    const rollUp = workspaceHealth({
      enabled: policy.enabled,
      counts: vehicleCounts,
      connections: workspaceConnections,
      scheduler: schedulerApplies ? scheduler : null,
    });
    const facts = onboarding.get(policy.id) ?? emptyOnboardingFacts();
    withRejectionShare(rollUp, facts);
    return {
      workspaceId: policy.id,
      name: policy.name,
      status: rollUp.status,
      reasons: rollUp.reasons,
      ingest: facts.ingest,
      discoveredDevices: facts.discoveredDevices,
      freshness: {
        thresholdSeconds: policy.freshness_threshold_seconds,
        silentAfterSeconds: policy.silent_after_seconds,
        counts: vehicleCounts,
        freshRatio: freshRatio(vehicleCounts),
        byReason: freshness.byReason,
      },
      scheduler: {
        status: !policy.enabled ? 'disabled' : !schedulerApplies ? 'not_used' : scheduler.silent ? 'scheduler_silent' : 'ok',
        lastScheduledAt: iso(scheduler.lastEventAt),
        silentAfterSeconds: scheduler.silentAfterSeconds,
      },
      connections: workspaceConnections,
      cutover: { mode: policy.mode, changedAt: policy.changed_at.toISOString() },
      checkedAt: new Date(nowMs).toISOString(),
    };
  });
}
