/**
 * Read side for ingest rejections, newest first. Rejections of updates that named no usable workspace are kept
 * under the nil workspace id and listed for admins only.
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
  }>(
    `SELECT workspace_id, id, rejected_at, reason, detail, source, provider, connection_id, external_device_id,
            vehicle_id, signal, update_body
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
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.rejectedAt, last.id]) : null };
}
