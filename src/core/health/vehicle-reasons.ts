/**
 * Why a vehicle is behind (stale, silent or never reported), named from a closed set of causes (docs/API.md,
 * "Vehicle status reasons"). Connection health is judged once per connection (`connectionHealth`, in TypeScript);
 * each connection's trouble becomes a verdict, and one SQL statement then gives every vehicle asked about, or the
 * whole fleet, its reason from those verdicts, its devices' own sockets and what it last said (connectivity, its
 * tracker's battery). No query per vehicle.
 */
import { intArray, textArray } from '../db/array-literal.ts';
import type { Sql } from '../db/database.ts';
import { trackerBatteryLowPct, vehicleConfirmationsCte, vehicleStatusSql, vehicleSyncFromConfirmations, type VehicleStatus } from './rules.ts';

export const vehicleReasonCodes = [
  /** Its connection fails (`errorClass` says how: transient, permanent, malformed_response, credentials_unreadable, disconnected). */
  'connection_failing',
  /** The provider refused the connection's credentials (or the vehicle's own socket with them). */
  'auth_failed',
  'rate_limited',
  /** No scheduled event reached the workspace for two poll intervals: nothing starts polls. */
  'scheduler_silent',
  /** The vehicle reported that it went to sleep. */
  'vehicle_asleep',
  /** The vehicle reported that it went offline, or its own socket (one per VIN) is not open. */
  'vehicle_disconnected',
  'tracker_battery_low',
  /** Its connection is fine, but the device sent nothing. */
  'device_not_reporting',
  /** The workspace is in `legacy` cutover and the legacy poller has not kept the vehicle in sync. */
  'legacy_poller_behind',
  /** No provider device is bound to the vehicle. */
  'no_devices',
  /** The workspace's telematics (or the vehicle's only connection) is turned off. */
  'disabled',
] as const;
export type VehicleReasonCode = (typeof vehicleReasonCodes)[number];

export interface VehicleStatusReason {
  code: VehicleReasonCode;
  detail: string;
  /** The connection the cause lies with, when it lies with one. */
  connectionId: string | null;
  /** The provider error class behind `connection_failing` (and a down socket), when there is one. */
  errorClass: string | null;
}

/** What `connectionVerdict` reads of a connection's health view. */
export interface ConnectionVerdictInput {
  id: string;
  label: string;
  status: string;
  detail: string;
  owner: 'core' | 'legacy_poller';
  lastSuccessAt: string | null;
  lastError: { class: string; at: string | null } | null;
}

/** A connection's trouble as the reason of its vehicles that are behind; `rank`: the worse, the lower. */
export interface ConnectionVerdict {
  code: VehicleReasonCode;
  errorClass: string | null;
  rank: number;
  detail: string;
  /** Said only of stale vehicles: a never-reported one on such a connection is its device's silence. */
  staleOnly?: true;
}

/**
 * The verdict of one connection, or null when nothing about it keeps a vehicle behind (an ok connection; a
 * degraded stream, whose trouble is its down devices', each told by its own socket).
 */
export function connectionVerdict(c: ConnectionVerdictInput): ConnectionVerdict | null {
  const detail = `${c.label}: ${c.detail}`;
  const errorClass = c.lastError?.class ?? null;
  switch (c.status) {
    case 'auth_failed':
      return { code: 'auth_failed', errorClass: 'auth', rank: 0, detail };
    case 'credentials_unreadable':
      return { code: 'connection_failing', errorClass: 'credentials_unreadable', rank: 1, detail };
    case 'failing':
      return { code: 'connection_failing', errorClass, rank: 2, detail };
    case 'disconnected':
      return { code: 'connection_failing', errorClass: errorClass ?? 'disconnected', rank: 3, detail };
    case 'scheduler_silent':
      return { code: 'scheduler_silent', errorClass: null, rank: 4, detail };
    case 'legacy_poller_behind':
      return { code: 'legacy_poller_behind', errorClass: null, rank: 5, detail };
    case 'rate_limited':
      return { code: 'rate_limited', errorClass: 'rate_limited', rank: 6, detail };
    case 'disabled':
      return { code: 'disabled', errorClass: null, rank: 9, detail };
    case 'ok': {
      // A legacy-owned connection the legacy poller keeps current overall: a stale vehicle of it is still its lag.
      if (c.owner === 'legacy_poller') return { code: 'legacy_poller_behind', errorClass: null, rank: 7, detail, staleOnly: true };
      // Fewer failures in a row than make the connection failing, but the last poll failed.
      const errorAt = c.lastError?.at ? Date.parse(c.lastError.at) : null;
      if (errorAt !== null && (c.lastSuccessAt === null || errorAt > Date.parse(c.lastSuccessAt))) {
        return { code: 'connection_failing', errorClass, rank: 8, detail: `${c.label}: its last poll failed (${errorClass ?? 'error'})`, staleOnly: true };
      }
      return null;
    }
    default:
      return null;
  }
}

/** The verdicts of every connection in `health` that has one, by connection id. */
export function connectionVerdicts(health: Iterable<readonly ConnectionVerdictInput[]>): Map<string, ConnectionVerdict> {
  const verdicts = new Map<string, ConnectionVerdict>();
  for (const connections of health) {
    for (const c of connections) {
      const verdict = connectionVerdict(c);
      if (verdict) verdicts.set(c.id, verdict);
    }
  }
  return verdicts;
}

/**
 * The verdicts as four array literals (connection id, code, rank and error class), and the connections whose verdict
 * is said only of stale vehicles: the parameters `reasonsCte` joins as a table.
 */
function verdictParams(verdicts: ReadonlyMap<string, ConnectionVerdict>): string[] {
  const entries = [...verdicts];
  return [
    textArray(entries.map(([id]) => id)),
    textArray(entries.map(([, v]) => v.code)),
    intArray(entries.map(([, v]) => v.rank)),
    textArray(entries.map(([, v]) => v.errorClass)),
    textArray(entries.filter(([, v]) => v.staleOnly === true).map(([id]) => id)),
  ];
}

/**
 * CTEs `candidates` and `reasons` over a CTE `behind` (workspace_id, id, status, enabled: the vehicles that are not
 * fresh, with their status and whether their workspace's telematics is on); `reasons` gives each of them its reason
 * as `code`, `error_class`, `connection_id` and `value`. Every cause is one join of the whole set, not a lookup per
 * vehicle: the workspace turned off; one of its devices' own sockets down (its error class: auth, rate_limited, else
 * disconnected); the worst verdict of its connections (not for a silent vehicle: it is synced, so its connections
 * confirm it); what it last said (asleep, offline, tracker battery low); then no device bound, or its connections
 * are fine but nothing confirmed it (stale) or it sent nothing (silent, never). The first cause in that order wins;
 * among a vehicle's bindings, the oldest. `$n` .. `$n+4` are `verdictParams`.
 */
function reasonsCte(n: number): string {
  const [ids, codes, ranks, classes, staleOnly] = [n, n + 1, n + 2, n + 3, n + 4].map((i) => `$${i}`);
  return `verdicts AS (
    SELECT * FROM unnest(${ids}::uuid[], ${codes}::text[], ${ranks}::int[], ${classes}::text[]) AS x(connection_id, code, rank, error_class)
  ),
  bound AS (
    SELECT b.workspace_id, b.id, b.status, d.connection_id, d.external_id, d.created_at
      FROM behind b JOIN device_bindings d ON d.workspace_id = b.workspace_id AND d.vehicle_id = b.id
  ),
  candidates AS (
    SELECT b.workspace_id, b.id, 0 AS k, 0 AS sub, NULL::timestamptz AS tie, 'disabled' AS code, NULL::text AS error_class,
           NULL::uuid AS connection_id, NULL::jsonb AS value
      FROM behind b WHERE NOT b.enabled
    UNION ALL
    SELECT d.workspace_id, d.id, 1, 0, d.created_at,
           CASE dd.devices_down ->> d.external_id WHEN 'auth' THEN 'auth_failed' WHEN 'rate_limited' THEN 'rate_limited' ELSE 'vehicle_disconnected' END,
           dd.devices_down ->> d.external_id, d.connection_id, NULL
      FROM bound d
      JOIN stream_connection_states dd ON dd.workspace_id = d.workspace_id AND dd.connection_id = d.connection_id AND dd.devices_down ? d.external_id
    UNION ALL
    SELECT d.workspace_id, d.id, 2, x.rank, d.created_at, x.code, x.error_class, d.connection_id, NULL
      FROM bound d JOIN verdicts x ON x.connection_id = d.connection_id
     WHERE d.status <> 'silent' AND (d.status = 'stale' OR NOT d.connection_id = ANY(${staleOnly}::uuid[]))
    UNION ALL
    SELECT b.workspace_id, b.id, 3, CASE WHEN s.signal = 'tracker_battery_pct' THEN 1 ELSE 0 END, NULL,
           CASE WHEN s.signal = 'connectivity_state' AND s.value = '"asleep"'::jsonb THEN 'vehicle_asleep'
                WHEN s.signal = 'connectivity_state' THEN 'vehicle_disconnected'
                ELSE 'tracker_battery_low' END,
           NULL, s.connection_id, s.value
      FROM behind b
      -- Looked up by key for each vehicle behind (OFFSET 0 keeps the planner from joining the whole snapshot instead):
      -- the vehicles behind are a part of the fleet, and the snapshot is 13 rows a vehicle.
      CROSS JOIN LATERAL (
        SELECT s.signal, s.value, s.connection_id FROM signal_snapshot s
         WHERE s.workspace_id = b.workspace_id AND s.vehicle_id = b.id AND s.signal IN ('connectivity_state', 'tracker_battery_pct')
        OFFSET 0) s
     WHERE (s.signal = 'connectivity_state' AND s.value IN ('"asleep"'::jsonb, '"offline"'::jsonb))
        OR (s.signal = 'tracker_battery_pct' AND jsonb_typeof(s.value) = 'number' AND (s.value #>> '{}')::numeric <= ${trackerBatteryLowPct})
    UNION ALL
    SELECT b.workspace_id, b.id, 4, 0, d.created_at,
           CASE WHEN d.connection_id IS NULL THEN 'no_devices' WHEN b.status = 'stale' THEN 'connection_failing' ELSE 'device_not_reporting' END,
           NULL, d.connection_id, NULL
      FROM behind b LEFT JOIN bound d ON d.workspace_id = b.workspace_id AND d.id = b.id
  ),
  reasons AS (
    SELECT DISTINCT ON (workspace_id, id) workspace_id, id, code, error_class, connection_id, value
      FROM candidates
     ORDER BY workspace_id, id, k, sub, tie, connection_id
  )`;
}

interface ReasonRow {
  vehicle_id: string;
  status: VehicleStatus;
  code: VehicleReasonCode | null;
  error_class: string | null;
  connection_id: string | null;
  value: unknown;
}

const generic: Record<VehicleReasonCode, string> = {
  connection_failing: 'no successful poll or live stream confirmed it within the freshness threshold',
  auth_failed: 'the provider refused the credentials',
  rate_limited: 'the provider is rate limiting',
  scheduler_silent: 'no scheduled event has come for two poll intervals: nothing starts polls',
  vehicle_asleep: 'the vehicle reported that it went to sleep',
  vehicle_disconnected: 'the vehicle reported that it went offline',
  tracker_battery_low: "the tracker's own battery was low when it last reported",
  device_not_reporting: 'its connection is fine, but the device has sent nothing',
  legacy_poller_behind: 'the legacy poller has not kept it in sync (cutover legacy)',
  no_devices: 'no provider device is bound to this vehicle',
  disabled: "the workspace's telematics is disabled",
};

function toReason(row: ReasonRow, verdicts: ReadonlyMap<string, ConnectionVerdict>): VehicleStatusReason | null {
  if (row.code === null) return null;
  const verdict = row.connection_id ? verdicts.get(row.connection_id) : undefined;
  let detail = generic[row.code];
  if (verdict && verdict.code === row.code) detail = verdict.detail;
  else if (row.code === 'tracker_battery_low' && typeof row.value === 'number') detail = `the tracker's own battery was at ${row.value} % when it last reported`;
  else if (row.error_class !== null && (row.code === 'vehicle_disconnected' || row.code === 'auth_failed' || row.code === 'rate_limited')) {
    detail = `its own socket is not open (last error: ${row.error_class})`;
  } else if (row.code === 'vehicle_disconnected' && row.value === null) detail = 'its own socket is not open';
  return { code: row.code, detail, connectionId: row.connection_id, errorClass: row.error_class };
}

/**
 * The reasons of the given vehicles of one workspace, each with the status it was read with (a page of vehicles
 * has judged them already, at one clock), by vehicle id; none for a fresh one.
 */
export async function loadVehicleReasons(
  sql: Sql,
  workspaceId: string,
  vehicles: readonly { id: string; status: VehicleStatus }[],
  verdicts: ReadonlyMap<string, ConnectionVerdict>,
): Promise<Map<string, VehicleStatusReason>> {
  const reasons = new Map<string, VehicleStatusReason>();
  const behind = vehicles.filter((v) => v.status !== 'fresh');
  if (behind.length === 0) return reasons;
  const { rows } = await sql.query<ReasonRow>(
    `WITH behind AS (
       SELECT v.workspace_id, v.id, b.status, p.enabled
         FROM unnest($2::uuid[], $3::text[]) AS b(id, status)
         JOIN vehicles v ON v.workspace_id = $1 AND v.id = b.id
         JOIN telematics_policies p ON p.workspace_id = v.workspace_id
     ),
     ${reasonsCte(4)}
     SELECT b.id AS vehicle_id, b.status, r.code, r.error_class, r.connection_id, r.value
       FROM behind b JOIN reasons r ON r.workspace_id = b.workspace_id AND r.id = b.id`,
    [workspaceId, textArray(behind.map((v) => v.id)), textArray(behind.map((v) => v.status)), ...verdictParams(verdicts)],
  );
  for (const row of rows) {
    const reason = toReason(row, verdicts);
    if (reason) reasons.set(row.vehicle_id, reason);
  }
  return reasons;
}

export interface FleetFreshness {
  counts: Record<VehicleStatus, number>;
  /** Vehicles that are not fresh, by reason code. */
  byReason: Partial<Record<VehicleReasonCode, number>>;
}

/** Active vehicles per workspace by freshness status and by reason, at `nowMs`: one statement over the fleet. */
export async function countVehiclesByReason(
  sql: Sql,
  workspaceIds: readonly string[] | 'all',
  verdicts: ReadonlyMap<string, ConnectionVerdict>,
  nowMs: number,
): Promise<Map<string, FleetFreshness>> {
  const { rows } = await sql.query<{ workspace_id: string; status: VehicleStatus; code: VehicleReasonCode | null; n: number }>(
    `WITH ${vehicleConfirmationsCte('($1::uuid[] IS NULL OR d.workspace_id = ANY($1::uuid[]))')},
     statuses AS MATERIALIZED (
       SELECT v.workspace_id, v.id, ${vehicleStatusSql('$2::timestamptz')} AS status, p.enabled
         FROM vehicles v
         JOIN telematics_policies p ON p.workspace_id = v.workspace_id
         ${vehicleSyncFromConfirmations}
        WHERE v.active AND ($1::uuid[] IS NULL OR v.workspace_id = ANY($1::uuid[]))
     ),
     behind AS (SELECT * FROM statuses WHERE status <> 'fresh'),
     ${reasonsCte(3)}
     SELECT s.workspace_id, s.status, r.code, count(*)::int AS n
       FROM statuses s LEFT JOIN reasons r ON r.workspace_id = s.workspace_id AND r.id = s.id
      GROUP BY 1, 2, 3`,
    [workspaceIds === 'all' ? null : workspaceIds, new Date(nowMs).toISOString(), ...verdictParams(verdicts)],
  );
  const fleet = new Map<string, FleetFreshness>();
  for (const row of rows) {
    const entry = fleet.get(row.workspace_id) ?? { counts: { fresh: 0, stale: 0, silent: 0, never: 0 }, byReason: {} };
    entry.counts[row.status] += row.n;
    if (row.code !== null) entry.byReason[row.code] = (entry.byReason[row.code] ?? 0) + row.n;
    fleet.set(row.workspace_id, entry);
  }
  return fleet;
}
