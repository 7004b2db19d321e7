/**
 * Read side for ingest rejections, newest first. Rejections of updates that named no usable workspace are kept
 * under the nil workspace id and listed for admins only.
 *
 * A row is one cause (reason, connection, device, signal) within an hour (core/ingest/rejection-aggregation.ts):
 * `count` rejections between `firstRejectedAt` and `lastRejectedAt`, refusing `readingCount` readings, with the
 * latest of them as the example (`detail`, `update`, and the ids it names). `rejectedAt` is `lastRejectedAt`, as
 * it was the one rejection's time before rows were folded; rows stored before then read as one rejection each.
 */
import type { Sql } from '../db/database.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';

export const unattributedWorkspace = '00000000-0000-0000-0000-000000000000';

export interface RejectionView {
  id: number;
  workspaceId: string | null;
  rejectedAt: string;
  reason: string;
  detail: string;
  source: string | null;
  provider: string | null;
  connectionId: string | null;
  externalDeviceId: string | null;
  vehicleId: string | null;
  signal: string | null;
  update: unknown;
  count: number;
  readingCount: number;
  firstRejectedAt: string;
  lastRejectedAt: string;
}

export interface RejectionQuery {
  since?: string | undefined;
  reason?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

export async function listRejections(
  sql: Sql,
  workspaceIds: readonly string[] | 'all',
  query: RejectionQuery,
): Promise<{ items: RejectionView[]; nextCursor: string | null }> {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'integer']);
  const { rows } = await sql.query<{
    workspace_id: string;
    id: number;
    rejected_at: Date;
    reason: string;
    detail: string;
    source: string | null;
    provider: string | null;
    connection_id: string | null;
    external_device_id: string | null;
    vehicle_id: string | null;
    signal: string | null;
    update_body: unknown;
    count: number;
    reading_count: number;
    first_rejected_at: Date;
  }>(
    `SELECT workspace_id, id, rejected_at, reason, detail, source, provider, connection_id, external_device_id,
            vehicle_id, signal, update_body, count, coalesce(first_rejected_at, rejected_at) AS first_rejected_at,
            -- A row from before folding is one rejection, of the readings its stored update holds.
            coalesce(reading_count, CASE WHEN jsonb_typeof(update_body -> 'readings') = 'array'
                                         THEN jsonb_array_length(update_body -> 'readings') ELSE 0 END) AS reading_count
       FROM ingest_rejections
      WHERE ($1::uuid[] IS NULL OR workspace_id = ANY($1::uuid[]))
        AND ($2::timestamptz IS NULL OR rejected_at >= $2)
        AND ($3::text IS NULL OR reason = $3)
        AND ($4::timestamptz IS NULL OR (rejected_at, id) < ($4, $5::bigint))
      ORDER BY rejected_at DESC, id DESC
      LIMIT $6`,
    [workspaceIds === 'all' ? null : workspaceIds, query.since ?? null, query.reason ?? null, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  const items = rows.slice(0, query.limit).map((row) => ({
    id: row.id,
    workspaceId: row.workspace_id === unattributedWorkspace ? null : row.workspace_id,
    rejectedAt: row.rejected_at.toISOString(),
    reason: row.reason,
    detail: row.detail,
    source: row.source,
    provider: row.provider,
    connectionId: row.connection_id,
    externalDeviceId: row.external_device_id,
    vehicleId: row.vehicle_id,
    signal: row.signal,
    update: row.update_body,
    count: Number(row.count),
    readingCount: Number(row.reading_count),
    firstRejectedAt: row.first_rejected_at.toISOString(),
    lastRejectedAt: row.rejected_at.toISOString(),
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.rejectedAt, last.id]) : null };
}
