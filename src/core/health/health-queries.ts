/**
 * Health read side: a workspace's freshness counts, its connections' health and the roll-up (DESIGN §8), all
 * computed from stored state at query time against the caller's clock.
 */
import type { Sql } from '../db/database.ts';
import { pollStateColumns, readPollState, type PollStateRow } from '../registry/connections.ts';
import {
  connectionHealth,
  freshRatio,
  vehicleConfirmationsCte,
  vehicleStatusSql,
  vehicleSyncFromConfirmations,
  workspaceHealth,
  type ConnectionFacts,
  type ConnectionHealth,
  type HealthReason,
  type VehicleStatus,
  type WorkspaceStatus,
} from './rules.ts';

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
  };
  connections: ConnectionHealthView[];
  cutover: { mode: 'legacy' | 'core'; changedAt: string };
  checkedAt: string;
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
  mode: 'legacy' | 'core';
  changed_at: Date;
}

async function loadPolicies(sql: Sql, workspaceIds: readonly string[] | 'all'): Promise<PolicyRow[]> {
  const { rows } = await sql.query<PolicyRow>(
    `SELECT w.id, w.name, p.enabled, p.freshness_threshold_seconds, p.silent_after_seconds, p.poll_interval_seconds,
            c.mode, c.changed_at
       FROM workspaces w
       JOIN telematics_policies p ON p.workspace_id = w.id
       JOIN cutover_states c ON c.workspace_id = w.id
      WHERE $1::uuid[] IS NULL OR w.id = ANY($1::uuid[])
      ORDER BY w.name, w.id`,
    [workspaceIds === 'all' ? null : workspaceIds],
  );
  return rows;
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
    }
  >(
    `SELECT c.workspace_id, c.id, c.provider, c.transport, c.label, c.enabled, c.credentials_unreadable_at, p.poll_interval_seconds, ${pollStateColumns},
            t.connected AS s_connected, t.last_message_at AS s_last_message_at, t.last_error_class AS s_last_error_class,
            t.last_error AS s_last_error, t.last_error_at AS s_last_error_at, t.next_reconnect_at AS s_next_reconnect_at,
            t.reported_at AS s_reported_at
       FROM provider_connections c
       JOIN telematics_policies p ON p.workspace_id = c.workspace_id
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
    });
    byWorkspace.set(row.workspace_id, list);
  }
  return byWorkspace;
}

/** Health of the given workspaces (or all), in name order. */
export async function loadWorkspaceHealth(sql: Sql, workspaceIds: readonly string[] | 'all', nowMs: number): Promise<WorkspaceHealthView[]> {
  const [policies, counts, connections] = await Promise.all([
    loadPolicies(sql, workspaceIds),
    countVehiclesByStatus(sql, workspaceIds, nowMs),
    loadConnectionHealth(sql, workspaceIds, nowMs),
  ]);
  return policies.map((policy) => {
    const vehicleCounts = counts.get(policy.id) ?? { fresh: 0, stale: 0, silent: 0, never: 0 };
    const workspaceConnections = connections.get(policy.id) ?? [];
    const rollUp = workspaceHealth({
      enabled: policy.enabled,
      counts: vehicleCounts,
      connections: workspaceConnections,
    });
    return {
      workspaceId: policy.id,
      name: policy.name,
      status: rollUp.status,
      reasons: rollUp.reasons,
      freshness: {
        thresholdSeconds: policy.freshness_threshold_seconds,
        silentAfterSeconds: policy.silent_after_seconds,
        counts: vehicleCounts,
        freshRatio: freshRatio(vehicleCounts),
      },
      connections: workspaceConnections,
      cutover: { mode: policy.mode, changedAt: policy.changed_at.toISOString() },
      checkedAt: new Date(nowMs).toISOString(),
    };
  });
}
