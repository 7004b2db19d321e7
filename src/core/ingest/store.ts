/**
 * The SQL of the ingest handler. Set-based: whatever the batch size, a batch costs a fixed number of statements
 * (arrays bound as parameters and expanded with unnest), never one statement per reading.
 */
import { boolArray, intArray, jsonArray, textArray } from '../db/array-literal.ts';
import type { CanonicalChargingSession } from '../../canonical/update.ts';
import type { Sql } from '../db/database.ts';
import type { CutoverMode } from '../registry/workspaces.ts';
import type { SnapshotPoint } from './classify.ts';
import { snapshotKey } from './classify.ts';

export interface WorkspaceState {
  enabled: boolean;
  retentionDays: number;
  cutover: CutoverMode;
  /** The mode before the last change, and how many changes there have been. */
  previousCutover: CutoverMode | null;
  cutoverGeneration: number;
  /** The SoC thresholds whose crossing is an event. */
  socThresholdsPct: number[];
  /** The cutover gate's: readings of the two pollers this close in observed time are one reading. */
  parityMatchSeconds: number;
}

/**
 * The policy and cutover of the given workspaces. With `lock`, inside the ingest transaction, the rows are held
 * `FOR SHARE` until it ends: a change of cutover or policy waits for the batches judged under the old state, and
 * every batch after it sees the new one.
 */
export async function loadWorkspaceStates(sql: Sql, workspaceIds: readonly string[], lock: boolean): Promise<Map<string, WorkspaceState>> {
  const states = new Map<string, WorkspaceState>();
  if (workspaceIds.length === 0) return states;
  const { rows } = await sql.query<{
    id: string;
    enabled: boolean;
    retention_days: number;
    mode: CutoverMode;
    previous_mode: CutoverMode | null;
    generation: number;
    soc_thresholds_pct: number[];
    parity_match_seconds: number;
  }>(
    `SELECT w.id, p.enabled, p.retention_days, c.mode, c.previous_mode, c.generation,
            p.soc_thresholds_pct, p.parity_match_seconds
       FROM workspaces w
       JOIN telematics_policies p ON p.workspace_id = w.id
       JOIN cutover_states c ON c.workspace_id = w.id
      WHERE w.id = ANY($1::uuid[])
      ORDER BY w.id${lock ? '\n        FOR SHARE OF p, c' : ''}`,
    [workspaceIds],
  );
  for (const row of rows) {
    states.set(row.id, {
      enabled: row.enabled,
      retentionDays: row.retention_days,
      cutover: row.mode,
      previousCutover: row.previous_mode,
      cutoverGeneration: row.generation,
      socThresholdsPct: row.soc_thresholds_pct.map(Number),
      parityMatchSeconds: row.parity_match_seconds,
    });
  }
  return states;
}

/**
 * Of `connections` (each a workspace and a connection), those `holder` holds a live lease on, locked `FOR SHARE` until the transaction ends, so the
 * lease cannot move to another process while this batch is written under it.
 */
export async function lockHeldLeases(tx: Sql, holder: string, connections: readonly { workspaceId: string; connectionId: string }[]): Promise<Set<string>> {
  if (connections.length === 0) return new Set();
  const { rows } = await tx.query<{ connection_id: string }>(
    `SELECT connection_id FROM stream_leases
      WHERE workspace_id = ANY($2::uuid[]) AND connection_id = ANY($3::uuid[]) AND holder = $1 AND expires_at > now()
      ORDER BY workspace_id, connection_id
        FOR SHARE`,
    [holder, [...new Set(connections.map((c) => c.workspaceId))], [...new Set(connections.map((c) => c.connectionId))]],
  );
  return new Set(rows.map((row) => row.connection_id));
}

export interface DeviceKey {
  workspaceId: string;
  connectionId: string;
  externalId: string;
}

export interface BoundDevice {
  vehicleId: string;
  vehicleActive: boolean;
  provider: string;
  connectionEnabled: boolean;
  /** The vehicle's event counter as this transaction, which has locked the vehicle, found it. */
  lastEventSequence: number;
}

export const deviceKey = (k: DeviceKey) => `${k.workspaceId}|${k.connectionId}|${k.externalId}`;

/**
 * Resolves devices to their vehicles and locks those vehicle rows until the transaction ends, in one global
 * order (workspace, vehicle), so concurrent batches that share vehicles queue instead of deadlocking, and every
 * batch classifies against a snapshot no one else is moving.
 */
export async function lockBoundDevices(tx: Sql, keys: readonly DeviceKey[]): Promise<Map<string, BoundDevice>> {
  const devices = new Map<string, BoundDevice>();
  if (keys.length === 0) return devices;
  const { rows } = await tx.query<{
    workspace_id: string;
    connection_id: string;
    external_id: string;
    vehicle_id: string;
    active: boolean;
    provider: string;
    enabled: boolean;
    last_event_sequence: string;
  }>(
    `SELECT d.workspace_id, d.connection_id, d.external_id, d.vehicle_id, v.active, c.provider, c.enabled, v.last_event_sequence::text
       FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(workspace_id, connection_id, external_id)
       JOIN device_bindings d
         ON d.workspace_id = k.workspace_id AND d.connection_id = k.connection_id AND d.external_id = k.external_id
       JOIN provider_connections c ON c.workspace_id = d.workspace_id AND c.id = d.connection_id
       JOIN vehicles v ON v.workspace_id = d.workspace_id AND v.id = d.vehicle_id
      ORDER BY v.workspace_id, v.id
        FOR NO KEY UPDATE OF v`,
    [textArray(keys.map((k) => k.workspaceId)), textArray(keys.map((k) => k.connectionId)), textArray(keys.map((k) => k.externalId))],
  );
  for (const row of rows) {
    devices.set(deviceKey({ workspaceId: row.workspace_id, connectionId: row.connection_id, externalId: row.external_id }), {
      vehicleId: row.vehicle_id,
      vehicleActive: row.active,
      provider: row.provider,
      connectionEnabled: row.enabled,
      lastEventSequence: Number(row.last_event_sequence),
    });
  }
  return devices;
}

export interface UnboundDevice {
  /** The provider of the connection the update names. */
  provider: string;
  /** What an operator decided about the device in the discovered-devices list, if it is there. */
  status: 'pending' | 'ignored' | 'bound' | null;
}

/**
 * For devices that are bound to no vehicle: whether the connection they name exists in the workspace (only then is
 * the device discovered there) and what an operator decided about it. One statement for the batch's unbound devices.
 */
export async function loadUnboundDevices(tx: Sql, keys: readonly DeviceKey[]): Promise<Map<string, UnboundDevice>> {
  const devices = new Map<string, UnboundDevice>();
  if (keys.length === 0) return devices;
  const { rows } = await tx.query<{ workspace_id: string; connection_id: string; external_id: string; provider: string; status: UnboundDevice['status'] }>(
    `SELECT k.workspace_id, k.connection_id, k.external_id, c.provider, d.status
       FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(workspace_id, connection_id, external_id)
       JOIN provider_connections c ON c.workspace_id = k.workspace_id AND c.id = k.connection_id
       LEFT JOIN discovered_devices d
         ON d.workspace_id = k.workspace_id AND d.connection_id = k.connection_id AND d.external_id = k.external_id`,
    [textArray(keys.map((k) => k.workspaceId)), textArray(keys.map((k) => k.connectionId)), textArray(keys.map((k) => k.externalId))],
  );
  for (const row of rows) {
    devices.set(deviceKey({ workspaceId: row.workspace_id, connectionId: row.connection_id, externalId: row.external_id }), { provider: row.provider, status: row.status });
  }
  return devices;
}

/** The snapshot of the given vehicles; values only for the signals that need them (counters). */
export async function loadSnapshot(
  tx: Sql,
  vehicles: readonly { workspaceId: string; vehicleId: string }[],
  signalsWithValues: readonly string[],
): Promise<Map<string, SnapshotPoint>> {
  const snapshot = new Map<string, SnapshotPoint>();
  if (vehicles.length === 0) return snapshot;
  // Epoch milliseconds as float8: cheaper to read than timestamps, and exact at millisecond precision.
  const { rows } = await tx.query<{ vehicle_id: string; signal: string; observed_ms: number; value: unknown }>(
    `SELECT s.vehicle_id, s.signal, (extract(epoch FROM s.observed_at) * 1000)::float8 AS observed_ms,
            CASE WHEN s.signal = ANY($3::text[]) THEN s.value END AS value
       FROM unnest($1::uuid[], $2::uuid[]) AS k(workspace_id, vehicle_id)
       JOIN signal_snapshot s ON s.workspace_id = k.workspace_id AND s.vehicle_id = k.vehicle_id`,
    [textArray(vehicles.map((v) => v.workspaceId)), textArray(vehicles.map((v) => v.vehicleId)), textArray(signalsWithValues)],
  );
  for (const row of rows) {
    snapshot.set(snapshotKey(row.vehicle_id, row.signal), { observedMs: Math.round(row.observed_ms), value: row.value });
  }
  return snapshot;
}

export interface HistoryRow {
  position: number;
  workspaceId: string;
  vehicleId: string;
  signal: string;
  observedAt: string;
  valueJson: string;
  source: string;
  provider: string;
  connectionId: string;
  receivedAt: string;
  /** Newer than the snapshot (and than the batch before it): this row moves the snapshot. */
  advances: boolean;
}

export interface RejectionRow {
  workspaceId: string;
  reason: string;
  detail: string;
  source: string | null;
  provider: string | null;
  connectionId: string | null;
  externalDeviceId: string | null;
  /** The device the cause is about, or null when it is the connection's (devices nobody bound: see discovered_devices). */
  causeDeviceId: string | null;
  vehicleId: string | null;
  signal: string | null;
  updateJson: string;
  /** The readings it refused: the update's for a rejected update, 1 for a rejected reading. */
  readings: number;
}

/** One stored rejection row: a cause, its counts in this batch, and the latest example of it (aggregateRejections). */
export interface AggregatedRejection extends RejectionRow {
  bucketStart: string;
  count: number;
  readingCount: number;
  rejectedAt: string;
}

/** A device nobody bound, as a batch saw it (folded per device by aggregateSightings). */
export interface DiscoveredRow {
  workspaceId: string;
  connectionId: string;
  externalId: string;
  provider: string;
  seenAt: string;
  readings: number;
  /** Of `readings`, those dropped because an operator ignores the device. */
  ignored: number;
  sample: Record<string, { value: unknown; observedAt: string }>;
}

export interface ReadingCountRow {
  workspaceId: string;
  connectionId: string;
  bucketStart: string;
  /** Which of the connection's counter rows of the bucket this batch adds to (rejection-aggregation.ts). */
  slot: number;
  readings: number;
  rejected: number;
}

export interface SyncMark {
  workspaceId: string;
  vehicleId: string;
  /** The newest observed time among the vehicle's rows in this batch, or null when it had none. */
  newestObservedAt: string | null;
  /** The vehicle's event counter after the events this unit of work tells of it (`writeEvents`). */
  lastEventSequence: number;
}

export interface UnitOfWork {
  history: readonly HistoryRow[];
  /** Vehicles whose updates were processed: their sync mark moves to now. */
  synced: readonly SyncMark[];
  /** Folded by cause (aggregateRejections). */
  rejections: readonly AggregatedRejection[];
  /** Folded by device (aggregateSightings). */
  discovered: readonly DiscoveredRow[];
  readingCounts: readonly ReadingCountRow[];
}

const pluck = <T, K extends keyof T>(rows: readonly T[], key: K): T[K][] => rows.map((row) => row[key]);

/**
 * The unit of work's writes, one statement: history rows (a reading already stored is skipped), the snapshot
 * moved forward by the rows that advance it, the vehicles' sync marks and event counters, the rejections added to
 * their causes' rows, the devices nobody bound and the readings counted per connection. Answers the positions
 * of the non-advancing rows that were already in history (duplicates). A row that advances the snapshot is newer
 * than every stored reading of its signal (the snapshot is the newest history row, and the vehicle is locked), so
 * only the others are looked up, one index probe each (LIMIT 1 in the lateral keeps the planner from scanning a
 * whole partition). Every part of the statement sees history as it was before it, so the final SELECT finds
 * exactly the readings stored by earlier batches.
 */
export async function writeUnitOfWork(tx: Sql, work: UnitOfWork): Promise<Set<number>> {
  const { history, synced, rejections, discovered, readingCounts } = work;
  const { rows } = await tx.query<{ position: number }>(
    `WITH input AS (
       SELECT * FROM ROWS FROM (
                unnest($1::int[]), unnest($2::uuid[]), unnest($3::uuid[]), unnest($4::text[]), unnest($5::timestamptz[]),
                jsonb_array_elements($6::jsonb), unnest($7::text[]), unnest($8::text[]), unnest($9::uuid[]),
                unnest($10::timestamptz[]), unnest($11::boolean[]))
         AS r(position, workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at, advances)
     ),
     inserted AS (
       INSERT INTO signal_history
              (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
       SELECT workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at FROM input
       ON CONFLICT DO NOTHING
     ),
     snapshot AS (
       INSERT INTO signal_snapshot AS s (workspace_id, vehicle_id, signal, value, observed_at, source, provider, connection_id)
       SELECT DISTINCT ON (workspace_id, vehicle_id, signal)
              workspace_id, vehicle_id, signal, value, observed_at, source, provider, connection_id
         FROM input
        WHERE advances
        ORDER BY workspace_id, vehicle_id, signal, observed_at DESC
       ON CONFLICT (workspace_id, vehicle_id, signal) DO UPDATE
          SET value = excluded.value, observed_at = excluded.observed_at, source = excluded.source,
              provider = excluded.provider, connection_id = excluded.connection_id, updated_at = now()
        WHERE excluded.observed_at > s.observed_at
     ),
     marks AS (
       UPDATE vehicles v
          SET last_synced_at = now(), last_observed_at = GREATEST(v.last_observed_at, m.newest),
              last_event_sequence = m.last_event_sequence
         FROM unnest($12::uuid[], $13::uuid[], $14::timestamptz[], $43::bigint[]) AS m(workspace_id, vehicle_id, newest, last_event_sequence)
        WHERE v.workspace_id = m.workspace_id AND v.id = m.vehicle_id
     ),
     rejected AS (
       INSERT INTO ingest_rejections AS r
              (workspace_id, reason, detail, source, provider, connection_id, external_device_id, vehicle_id, signal, update_body,
               cause_device_id, bucket_start, count, reading_count, first_rejected_at, rejected_at)
       SELECT k.*, k.rejected_at FROM unnest($15::uuid[], $16::text[], $17::text[], $18::text[], $19::text[], $20::uuid[], $21::text[],
                            $22::uuid[], $23::text[], $24::text[]::jsonb[], $25::text[], $26::timestamptz[], $27::bigint[],
                            $28::bigint[], $29::timestamptz[])
         AS k(workspace_id, reason, detail, source, provider, connection_id, external_device_id, vehicle_id, signal, update_body,
              cause_device_id, bucket_start, count, reading_count, rejected_at)
       ON CONFLICT (workspace_id, bucket_start, reason, connection_id, cause_device_id, signal) WHERE bucket_start IS NOT NULL
       DO UPDATE SET count = r.count + excluded.count, reading_count = r.reading_count + excluded.reading_count,
              first_rejected_at = LEAST(r.first_rejected_at, excluded.first_rejected_at),
              rejected_at = GREATEST(r.rejected_at, excluded.rejected_at),
              -- The latest example; a batch judged by a clock behind the row's keeps the newer one.
              detail = CASE WHEN excluded.rejected_at >= r.rejected_at THEN excluded.detail ELSE r.detail END,
              update_body = CASE WHEN excluded.rejected_at >= r.rejected_at THEN excluded.update_body ELSE r.update_body END,
              source = CASE WHEN excluded.rejected_at >= r.rejected_at THEN excluded.source ELSE r.source END,
              provider = CASE WHEN excluded.rejected_at >= r.rejected_at THEN excluded.provider ELSE r.provider END,
              external_device_id = CASE WHEN excluded.rejected_at >= r.rejected_at THEN excluded.external_device_id ELSE r.external_device_id END,
              vehicle_id = CASE WHEN excluded.rejected_at >= r.rejected_at THEN excluded.vehicle_id ELSE r.vehicle_id END
     ),
     discovered AS (
       INSERT INTO discovered_devices AS d
              (workspace_id, connection_id, external_id, provider, first_seen_at, last_seen_at, reading_count, ignored_count, sample)
       SELECT workspace_id, connection_id, external_id, provider, seen_at, seen_at, readings, ignored, sample
         FROM ROWS FROM (unnest($30::uuid[]), unnest($31::uuid[]), unnest($32::text[]), unnest($33::text[]),
                         unnest($34::timestamptz[]), unnest($35::bigint[]), unnest($36::bigint[]), jsonb_array_elements($37::jsonb))
           AS k(workspace_id, connection_id, external_id, provider, seen_at, readings, ignored, sample)
       ON CONFLICT (workspace_id, connection_id, external_id) DO UPDATE
          SET last_seen_at = GREATEST(d.last_seen_at, excluded.last_seen_at), provider = excluded.provider,
              reading_count = d.reading_count + excluded.reading_count, ignored_count = d.ignored_count + excluded.ignored_count,
              -- One entry per catalogue signal: the sample stays a few hundred bytes however long the device reports.
              sample = d.sample || excluded.sample,
              -- Reported unbound, so a binding made from this list has gone since (its vehicle was deleted, say).
              status = CASE WHEN d.status = 'bound' THEN 'pending' ELSE d.status END,
              vehicle_id = CASE WHEN d.status = 'bound' THEN NULL ELSE d.vehicle_id END
     ),
     counted AS (
       INSERT INTO ingest_reading_counts AS c (workspace_id, connection_id, bucket_start, readings, rejected, slot)
       SELECT * FROM unnest($38::uuid[], $39::uuid[], $40::timestamptz[], $41::bigint[], $42::bigint[], $44::smallint[])
       ON CONFLICT (workspace_id, bucket_start, connection_id, slot) DO UPDATE
          SET readings = c.readings + excluded.readings, rejected = c.rejected + excluded.rejected
     )
     SELECT i.position FROM input i
       JOIN LATERAL (SELECT 1 FROM signal_history h
                      WHERE h.workspace_id = i.workspace_id AND h.vehicle_id = i.vehicle_id
                        AND h.signal = i.signal AND h.observed_at = i.observed_at
                      LIMIT 1) stored ON true
      WHERE NOT i.advances`,
    [
      intArray(pluck(history, 'position')),
      textArray(pluck(history, 'workspaceId')),
      textArray(pluck(history, 'vehicleId')),
      textArray(pluck(history, 'signal')),
      textArray(pluck(history, 'observedAt')),
      jsonArray(pluck(history, 'valueJson')),
      textArray(pluck(history, 'source')),
      textArray(pluck(history, 'provider')),
      textArray(pluck(history, 'connectionId')),
      textArray(pluck(history, 'receivedAt')),
      boolArray(pluck(history, 'advances')),
      textArray(pluck(synced, 'workspaceId')),
      textArray(pluck(synced, 'vehicleId')),
      textArray(pluck(synced, 'newestObservedAt')),
      textArray(pluck(rejections, 'workspaceId')),
      textArray(pluck(rejections, 'reason')),
      textArray(pluck(rejections, 'detail')),
      textArray(pluck(rejections, 'source')),
      textArray(pluck(rejections, 'provider')),
      textArray(pluck(rejections, 'connectionId')),
      textArray(pluck(rejections, 'externalDeviceId')),
      textArray(pluck(rejections, 'vehicleId')),
      textArray(pluck(rejections, 'signal')),
      textArray(pluck(rejections, 'updateJson')),
      textArray(pluck(rejections, 'causeDeviceId')),
      textArray(pluck(rejections, 'bucketStart')),
      intArray(pluck(rejections, 'count')),
      intArray(pluck(rejections, 'readingCount')),
      textArray(pluck(rejections, 'rejectedAt')),
      textArray(pluck(discovered, 'workspaceId')),
      textArray(pluck(discovered, 'connectionId')),
      textArray(pluck(discovered, 'externalId')),
      textArray(pluck(discovered, 'provider')),
      textArray(pluck(discovered, 'seenAt')),
      intArray(pluck(discovered, 'readings')),
      intArray(pluck(discovered, 'ignored')),
      jsonArray(discovered.map((d) => JSON.stringify(d.sample))),
      textArray(pluck(readingCounts, 'workspaceId')),
      textArray(pluck(readingCounts, 'connectionId')),
      textArray(pluck(readingCounts, 'bucketStart')),
      intArray(pluck(readingCounts, 'readings')),
      intArray(pluck(readingCounts, 'rejected')),
      intArray(pluck(synced, 'lastEventSequence')),
      intArray(pluck(readingCounts, 'slot')),
    ],
  );
  return new Set(rows.map((row) => row.position));
}

export interface ChargingSessionRow extends CanonicalChargingSession {
  workspaceId: string;
  connectionId: string;
  vehicleId: string;
  provider: string;
  receivedAt: string;
}

/**
 * Charging sessions of the processed updates, once per provider id: a later report of a session (it ended, its
 * energy was counted) replaces the earlier one. One statement; the last report of an id within a batch wins.
 */
export async function writeChargingSessions(tx: Sql, sessions: readonly ChargingSessionRow[]): Promise<void> {
  const byKey = new Map<string, ChargingSessionRow>();
  for (const s of sessions) byKey.set(`${s.workspaceId}|${s.connectionId}|${s.externalId}`, s);
  await tx.query(
    `INSERT INTO charging_sessions AS c
            (workspace_id, connection_id, external_id, vehicle_id, provider, started_at, ended_at, start_soc_pct, end_soc_pct,
             energy_kwh, peak_power_kw, location, received_at)
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
              workspace_id uuid, connection_id uuid, external_id text, vehicle_id uuid, provider text, started_at timestamptz,
              ended_at timestamptz, start_soc_pct float8, end_soc_pct float8, energy_kwh float8, peak_power_kw float8,
              location jsonb, received_at timestamptz)
     ON CONFLICT (workspace_id, connection_id, external_id) DO UPDATE
        SET vehicle_id = excluded.vehicle_id, started_at = excluded.started_at, ended_at = excluded.ended_at,
            start_soc_pct = excluded.start_soc_pct, end_soc_pct = excluded.end_soc_pct, energy_kwh = excluded.energy_kwh,
            peak_power_kw = excluded.peak_power_kw, location = excluded.location, received_at = excluded.received_at,
            updated_at = now()`,
    [
      JSON.stringify(
        [...byKey.values()].map((s) => ({
          workspace_id: s.workspaceId,
          connection_id: s.connectionId,
          external_id: s.externalId,
          vehicle_id: s.vehicleId,
          provider: s.provider,
          started_at: s.startedAt,
          ended_at: s.endedAt,
          start_soc_pct: s.startSocPct,
          end_soc_pct: s.endSocPct,
          energy_kwh: s.energyKwh,
          peak_power_kw: s.peakPowerKw,
          location: s.location,
          received_at: s.receivedAt,
        })),
      ),
    ],
  );
}
