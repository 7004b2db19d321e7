/**
 * Read side for vehicles: SQL straight to response objects, each vehicle with its devices and its snapshot.
 */
import type { Sql } from '../db/database.ts';
import { notFound } from '../errors.ts';
import { isoOrNull } from '../time.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { utcText } from './sql-fragments.ts';

export interface SignalState {
  value: unknown;
  observedAt: string;
  source: string;
  provider: string;
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
}

const vehicleSelect = `
  SELECT v.workspace_id, v.id, v.name, v.vin, v.active, v.created_at, v.last_synced_at, v.last_observed_at,
         COALESCE((SELECT jsonb_agg(jsonb_build_object('connectionId', d.connection_id, 'externalId', d.external_id,
                                                       'provider', c.provider) ORDER BY c.provider, d.external_id)
                     FROM device_bindings d
                     JOIN provider_connections c ON c.workspace_id = d.workspace_id AND c.id = d.connection_id
                    WHERE d.workspace_id = v.workspace_id AND d.vehicle_id = v.id), '[]'::jsonb) AS devices,
         COALESCE((SELECT jsonb_object_agg(s.signal, jsonb_build_object('value', s.value,
                                                     'observedAt', ${utcText('s.observed_at')},
                                                     'source', s.source, 'provider', s.provider))
                     FROM signal_snapshot s
                    WHERE s.workspace_id = v.workspace_id AND s.vehicle_id = v.id), '{}'::jsonb) AS signals
    FROM vehicles v`;

function toView(row: VehicleRow): VehicleView {
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
  };
}

export interface VehiclePage {
  items: VehicleView[];
  nextCursor: string | null;
}

export async function listVehicles(
  sql: Sql,
  workspaceId: string,
  query: { limit: number; cursor?: string | undefined; active?: boolean | undefined },
): Promise<VehiclePage> {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['text', 'uuid']);
  const { rows } = await sql.query<VehicleRow>(
    `${vehicleSelect}
      WHERE v.workspace_id = $1
        AND ($2::text IS NULL OR (v.name, v.id) > ($2::text, $3::uuid))
        AND ($4::boolean IS NULL OR v.active = $4)
      ORDER BY v.name, v.id
      LIMIT $5`,
    [workspaceId, after?.[0] ?? null, after?.[1] ?? null, query.active ?? null, query.limit + 1],
  );
  const items = rows.slice(0, query.limit).map(toView);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.name, last.id]) : null };
}

export async function getVehicle(sql: Sql, workspaceId: string, vehicleId: string): Promise<VehicleView> {
  const { rows } = await sql.query<VehicleRow>(`${vehicleSelect} WHERE v.workspace_id = $1 AND v.id = $2`, [workspaceId, vehicleId]);
  const row = rows[0];
  if (!row) throw notFound('vehicle', vehicleId);
  return toView(row);
}
