/**
 * Read side for one vehicle's history, in observed-time order, with cursor pagination. The primary key
 * (workspace, vehicle, signal, observed time) serves every form of this query; partitions outside [from, to)
 * are pruned.
 */
import type { Sql } from '../db/database.ts';
import { notFound } from '../errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';

export interface HistoryItem {
  signal: string;
  value: unknown;
  observedAt: string;
  source: string;
  provider: string;
  receivedAt: string;
}

export interface HistoryQuery {
  signal?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  limit: number;
  cursor?: string | undefined;
  order: 'asc' | 'desc';
}

export async function readHistory(
  sql: Sql,
  workspaceId: string,
  vehicleId: string,
  query: HistoryQuery,
): Promise<{ items: HistoryItem[]; nextCursor: string | null }> {
  const exists = await sql.query('SELECT 1 FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
  if (exists.rowCount === 0) throw notFound('vehicle', vehicleId);
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'text']);
  const ascending = query.order === 'asc';
  const { rows } = await sql.query<{
    signal: string;
    value: unknown;
    observed_at: Date;
    source: string;
    provider: string;
    received_at: Date;
  }>(
    `SELECT signal, value, observed_at, source, provider, received_at
       FROM signal_history
      WHERE workspace_id = $1 AND vehicle_id = $2
        AND ($3::text IS NULL OR signal = $3)
        AND ($4::timestamptz IS NULL OR observed_at >= $4)
        AND ($5::timestamptz IS NULL OR observed_at < $5)
        AND ($6::timestamptz IS NULL OR ${ascending ? '(observed_at, signal) > ($6, $7::text)' : '(observed_at, signal) < ($6, $7::text)'})
      ORDER BY observed_at ${ascending ? 'ASC' : 'DESC'}, signal ${ascending ? 'ASC' : 'DESC'}
      LIMIT $8`,
    [workspaceId, vehicleId, query.signal ?? null, query.from ?? null, query.to ?? null, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  const items = rows.slice(0, query.limit).map((row) => ({
    signal: row.signal,
    value: row.value,
    observedAt: row.observed_at.toISOString(),
    source: row.source,
    provider: row.provider,
    receivedAt: row.received_at.toISOString(),
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.observedAt, last.signal]) : null };
}
