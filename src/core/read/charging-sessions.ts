/**
 * Read side for one vehicle's charging sessions as its providers reported them, newest start first, with cursor
 * pagination; `[from, to)` bounds the start time.
 */
import type { Sql } from '../db/database.ts';
import { notFound } from '../errors.ts';
import { isoOrNull } from '../time.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';

export interface ChargingSessionView {
  id: string;
  connectionId: string;
  provider: string;
  startedAt: string;
  endedAt: string | null;
  startSocPct: number | null;
  endSocPct: number | null;
  energyKwh: number | null;
  peakPowerKw: number | null;
  location: { lat: number; lon: number } | null;
  receivedAt: string;
}

export async function listChargingSessions(
  sql: Sql,
  workspaceId: string,
  vehicleId: string,
  query: { from?: string | undefined; to?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: ChargingSessionView[]; nextCursor: string | null }> {
  const exists = await sql.query('SELECT 1 FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
  if (exists.rowCount === 0) throw notFound('vehicle', vehicleId);
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'uuid', 'text']);
  const { rows } = await sql.query<{
    connection_id: string;
    external_id: string;
    provider: string;
    started_at: Date;
    ended_at: Date | null;
    start_soc_pct: number | null;
    end_soc_pct: number | null;
    energy_kwh: number | null;
    peak_power_kw: number | null;
    location: { lat: number; lon: number } | null;
    received_at: Date;
  }>(
    `SELECT connection_id, external_id, provider, started_at, ended_at, start_soc_pct, end_soc_pct, energy_kwh,
            peak_power_kw, location, received_at
       FROM charging_sessions
      WHERE workspace_id = $1 AND vehicle_id = $2
        AND ($3::timestamptz IS NULL OR started_at >= $3)
        AND ($4::timestamptz IS NULL OR started_at < $4)
        AND ($5::timestamptz IS NULL OR (started_at, connection_id, external_id) < ($5, $6::uuid, $7::text))
      ORDER BY started_at DESC, connection_id DESC, external_id DESC
      LIMIT $8`,
    [workspaceId, vehicleId, query.from ?? null, query.to ?? null, after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, query.limit + 1],
  );
  const page = rows.slice(0, query.limit);
  const items = page.map((row) => ({
    id: row.external_id,
    connectionId: row.connection_id,
    provider: row.provider,
    startedAt: row.started_at.toISOString(),
    endedAt: isoOrNull(row.ended_at),
    startSocPct: row.start_soc_pct,
    endSocPct: row.end_soc_pct,
    energyKwh: row.energy_kwh,
    peakPowerKw: row.peak_power_kw,
    location: row.location,
    receivedAt: row.received_at.toISOString(),
  }));
  const last = page[page.length - 1];
  return {
    items,
    nextCursor: rows.length > query.limit && last ? encodeCursor([last.started_at.toISOString(), last.connection_id, last.external_id]) : null,
  };
}
