/** Read side for poll runs: newest first, per workspace, optionally one connection or status. */
import type { Sql } from '../db/database.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';

export interface PollRunView {
  id: number;
  connectionId: string;
  provider: string;
  triggerEventId: string | null;
  runner: string;
  startedAt: string;
  finishedAt: string | null;
  status: 'running' | 'succeeded' | 'failed';
  errorClass: string | null;
  errorMessage: string | null;
  providerRequests: number;
  pages: number;
  skippedEntities: number;
  /** Things worth an operator's attention that did not fail the run (a feed restarted). */
  notes: string[];
  readings: { accepted: number; late: number; duplicate: number; rejected: number };
}

export async function listPollRuns(
  sql: Sql,
  workspaceId: string,
  query: { connectionId?: string | undefined; status?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<{ items: PollRunView[]; nextCursor: string | null }> {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['integer']);
  const { rows } = await sql.query<{
    id: number;
    connection_id: string;
    provider: string;
    trigger_event_id: string | null;
    runner: string;
    started_at: Date;
    finished_at: Date | null;
    status: PollRunView['status'];
    error_class: string | null;
    error_message: string | null;
    provider_requests: number;
    pages: number;
    skipped_entities: number;
    notes: string[];
    accepted: number;
    late: number;
    duplicate: number;
    rejected: number;
  }>(
    `SELECT id, connection_id, provider, trigger_event_id, runner, started_at, finished_at, status, error_class, error_message,
            provider_requests, pages, skipped_entities, notes, accepted, late, duplicate, rejected
       FROM poll_runs
      WHERE workspace_id = $1
        AND ($2::uuid IS NULL OR connection_id = $2::uuid)
        AND ($3::text IS NULL OR status = $3)
        AND ($4::bigint IS NULL OR id < $4::bigint)
      ORDER BY id DESC
      LIMIT $5`,
    [workspaceId, query.connectionId ?? null, query.status ?? null, after?.[0] ?? null, query.limit + 1],
  );
  const items = rows.slice(0, query.limit).map((row) => ({
    id: row.id,
    connectionId: row.connection_id,
    provider: row.provider,
    triggerEventId: row.trigger_event_id,
    runner: row.runner,
    startedAt: row.started_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    status: row.status,
    errorClass: row.error_class,
    errorMessage: row.error_message,
    providerRequests: row.provider_requests,
    pages: row.pages,
    skippedEntities: row.skipped_entities,
    notes: row.notes,
    readings: { accepted: row.accepted, late: row.late, duplicate: row.duplicate, rejected: row.rejected },
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.id]) : null };
}
