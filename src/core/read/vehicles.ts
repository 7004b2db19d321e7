/**
 * Read side for vehicles: SQL straight to response objects, each vehicle with its devices and its snapshot.
 */
import type { Sql } from '../db/database.ts';
import { notFound } from '../errors.ts';
import { vehicleConfirmationsCte, vehicleStatusSql, vehicleSyncFromConfirmations, vehicleSyncJoin, type VehicleStatus } from '../health/rules.ts';
import type { VehicleStatusReason } from '../health/vehicle-reasons.ts';
import { isoOrNull } from '../time.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { utcText } from './sql-fragments.ts';

export interface SignalState {
  value: unknown;
  observedAt: string;
  source: string;
  provider: string;
}

export interface Freshness {
  status: VehicleStatus;
  /** Seconds since the pipeline last confirmed the vehicle with its provider; null if never. */
  syncAgeSeconds: number | null;
  /** Seconds since the newest reading was observed; null if never. */
  observedAgeSeconds: number | null;
  /** Why a stale vehicle is stale: the trouble of its connections (set by the caller, who knows their health). */
  reason: { code: string; detail: string; connectionId: string | null } | null;
  /** Why a vehicle that is not fresh is behind, from the closed set of health/vehicle-reasons.ts (set by the caller). */
  statusReason: VehicleStatusReason | null;
}

export interface VehicleView {
  id: string;
  workspaceId: string;
  name: string;
  vin: string | null;
  active: boolean;
  createdAt: string;
  lastSyncedAt: string | null;
  lastObservedAt: string | null;
  devices: { connectionId: string; externalId: string; provider: string }[];
  signals: Record<string, SignalState>;
  freshness: Freshness;
}

interface VehicleRow {
  workspace_id: string;
  id: string;
  name: string;
  vin: string | null;
  active: boolean;
  created_at: Date;
  last_synced_at: Date | null;
  last_observed_at: Date | null;
  devices: VehicleView['devices'];
  signals: VehicleView['signals'];
  status: VehicleStatus;
}

/**
 * Vehicles with devices, snapshot and freshness status at the clock in parameter `now`, of the workspace in `$1`.
 * `wholeFleet` when the query may look at every vehicle of the workspace (a status filter): their confirmations are
 * then aggregated once rather than looked up per vehicle.
 */
const vehicleSelect = (now: string, wholeFleet = false) => `
  ${wholeFleet ? `WITH ${vehicleConfirmationsCte('d.workspace_id = $1')}` : ''}
  SELECT v.workspace_id, v.id, v.name, v.vin, v.active, v.created_at, sy.synced_at AS last_synced_at, v.last_observed_at,
         ${vehicleStatusSql(now)} AS status,
         COALESCE((SELECT json_agg(json_build_object('connectionId', d.connection_id, 'externalId', d.external_id,
                                                       'provider', c.provider) ORDER BY c.provider, d.external_id)
                     FROM device_bindings d
                     JOIN provider_connections c ON c.workspace_id = d.workspace_id AND c.id = d.connection_id
                    WHERE d.workspace_id = v.workspace_id AND d.vehicle_id = v.id), '[]'::json) AS devices,
         COALESCE((SELECT json_object_agg(s.signal, json_build_object('value', s.value,
                                                     'observedAt', ${utcText('s.observed_at')},
                                                     'source', s.source, 'provider', s.provider))
                     FROM signal_snapshot s
                    WHERE s.workspace_id = v.workspace_id AND s.vehicle_id = v.id), '{}'::json) AS signals
    FROM vehicles v
    JOIN telematics_policies p ON p.workspace_id = v.workspace_id
    ${wholeFleet ? vehicleSyncFromConfirmations : vehicleSyncJoin}`;

const age = (at: Date | null, nowMs: number) => (at ? Math.max(0, Math.round((nowMs - at.getTime()) / 1000)) : null);

function toView(row: VehicleRow, nowMs: number): VehicleView {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    vin: row.vin,
    active: row.active,
    createdAt: row.created_at.toISOString(),
    lastSyncedAt: isoOrNull(row.last_synced_at),
    lastObservedAt: isoOrNull(row.last_observed_at),
    devices: row.devices,
    signals: row.signals,
    freshness: {
      status: row.status,
      syncAgeSeconds: age(row.last_synced_at, nowMs),
      observedAgeSeconds: age(row.last_observed_at, nowMs),
      reason: null,
      statusReason: null,
    },
  };
}

export interface VehiclePage {
  items: VehicleView[];
  nextCursor: string | null;
}

export async function listVehicles(
  sql: Sql,
  workspaceId: string,
  query: { limit: number; cursor?: string | undefined; active?: boolean | undefined; status?: VehicleStatus | undefined },
  nowMs: number,
): Promise<VehiclePage> {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['text', 'uuid']);
  const { rows } = await sql.query<VehicleRow>(
    `${vehicleSelect('$6::timestamptz', query.status !== undefined)}
      WHERE v.workspace_id = $1
        AND ($2::text IS NULL OR (v.name, v.id) > ($2::text, $3::uuid))
        AND ($4::boolean IS NULL OR v.active = $4)
        AND ($7::text IS NULL OR ${vehicleStatusSql('$6::timestamptz')} = $7::text)
      ORDER BY v.name, v.id
      LIMIT $5`,
    [workspaceId, after?.[0] ?? null, after?.[1] ?? null, query.active ?? null, query.limit + 1, new Date(nowMs).toISOString(), query.status ?? null],
  );
  const items = rows.slice(0, query.limit).map((row) => toView(row, nowMs));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.name, last.id]) : null };
}

export async function getVehicle(sql: Sql, workspaceId: string, vehicleId: string, nowMs: number = Date.now()): Promise<VehicleView> {
  const { rows } = await sql.query<VehicleRow>(`${vehicleSelect('$3::timestamptz')} WHERE v.workspace_id = $1 AND v.id = $2`, [
    workspaceId,
    vehicleId,
    new Date(nowMs).toISOString(),
  ]);
  const row = rows[0];
  if (!row) throw notFound('vehicle', vehicleId);
  return toView(row, nowMs);
}
