/**
 * The event log's SQL: events written in the unit of work that causes them (numbered per subject and given their
 * log position), the head, and reads by position.
 */
import { intArray, jsonArray, textArray } from '../db/array-literal.ts';
import type { Sql } from '../db/database.ts';
import type { EventDraft, EventType, StoredEvent } from './catalogue.ts';

/**
 * Writes events inside the caller's transaction, each numbered after its subject's last and given the next log
 * positions. Call it once, as the transaction's last write: subject rows are locked first (in one order, so two units
 * of work that touch one subject number its events in commit order), then the log's head row, which the transaction
 * holds until it commits. Units of work that write events therefore commit their positions one after the other, in
 * position order, for only the time of the insert and the commit: positions are dense, in commit order, and never
 * appear below one a reader has seen, and each event row is written once. Each event's rank among its subject's
 * events here is worked out before the statements; columns go as array literals and the payloads as one JSON array
 * (`src/core/db/array-literal.ts`).
 */
export async function writeEvents(tx: Sql, drafts: readonly EventDraft[]): Promise<void> {
  if (drafts.length === 0) return;
  const perSubject = new Map<string, number>();
  const keys = drafts.map((d) => `${d.workspaceId} ${d.subject}`);
  const rank = keys.map((key) => {
    const n = (perSubject.get(key) ?? 0) + 1;
    perSubject.set(key, n);
    return n;
  });
  const subjects = [...perSubject.keys()].sort();
  const { rows: bumped } = await tx.query<{ workspace_id: string; subject: string; last_sequence: string }>(
    `INSERT INTO event_subjects AS s (workspace_id, subject, last_sequence)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[]) ORDER BY 1, 2
     ON CONFLICT (workspace_id, subject) DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
     RETURNING s.workspace_id, s.subject, s.last_sequence::text`,
    [
      textArray(subjects.map((key) => key.slice(0, key.indexOf(' ')))),
      textArray(subjects.map((key) => key.slice(key.indexOf(' ') + 1))),
      intArray(subjects.map((key) => perSubject.get(key)!)),
    ],
  );
  const lastSequence = new Map(bumped.map((r) => [`${r.workspace_id} ${r.subject}`, Number(r.last_sequence)]));
  await tx.query(
    `WITH head AS (
       UPDATE event_log_head SET last_position = last_position + $7 RETURNING last_position - $7 AS base
     )
     INSERT INTO events (id, workspace_id, subject, type, sequence, time, data, position)
     SELECT r.id, r.workspace_id, r.subject, r.type, r.sequence, r.time, r.data, head.base + r.ord
       FROM head, ROWS FROM (
              unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::text[]), unnest($5::timestamptz[]),
              json_array_elements($6::json), unnest($8::bigint[]))
            WITH ORDINALITY AS r(id, workspace_id, subject, type, time, data, sequence, ord)
      ORDER BY r.ord`,
    [
      textArray(drafts.map((d) => d.id)),
      textArray(drafts.map((d) => d.workspaceId)),
      textArray(drafts.map((d) => d.subject)),
      textArray(drafts.map((d) => d.type)),
      textArray(drafts.map((d) => d.time)),
      jsonArray(drafts.map((d) => JSON.stringify(d.data))),
      drafts.length,
      intArray(keys.map((key, i) => lastSequence.get(key)! - perSubject.get(key)! + rank[i]!)),
    ],
  );
}

/** The last position given. */
export async function eventLogHead(sql: Sql): Promise<number> {
  const { rows } = await sql.query<{ last_position: string }>('SELECT last_position::text FROM event_log_head');
  return Number(rows[0]?.last_position ?? 0);
}

interface EventRow {
  position: string;
  id: string;
  workspace_id: string;
  subject: string;
  type: EventType;
  sequence: string;
  time: Date;
  data: Record<string, unknown>;
  created_at: Date;
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    position: Number(row.position),
    id: row.id,
    workspaceId: row.workspace_id,
    subject: row.subject,
    type: row.type,
    sequence: Number(row.sequence),
    time: row.time.toISOString(),
    data: row.data,
    createdAtMs: row.created_at.getTime(),
  };
}

/** A workspace's events after `after`, up to `through`, in position order; `types` (when given) filters. */
export async function readEvents(
  sql: Sql,
  query: { workspaceId: string; after: number; through?: number; types?: readonly string[] | undefined; limit: number },
): Promise<StoredEvent[]> {
  const { rows } = await sql.query<EventRow>(
    `SELECT position::text, id, workspace_id, subject, type, sequence::text, time, data, created_at
       FROM events
      WHERE workspace_id = $1 AND position > $2 AND ($3::bigint IS NULL OR position <= $3)
        AND ($4::text[] IS NULL OR type = ANY($4::text[]))
      ORDER BY events.position
      LIMIT $5`,
    [query.workspaceId, query.after, query.through ?? null, query.types && query.types.length > 0 ? query.types : null, query.limit],
  );
  return rows.map(toStoredEvent);
}

/** The position just before the oldest event a workspace still keeps (where a replay from the start begins). */
export async function oldestRetainedPosition(sql: Sql, workspaceId: string): Promise<number> {
  const { rows } = await sql.query<{ position: string | null }>('SELECT (min(position) - 1)::text AS position FROM events WHERE workspace_id = $1', [workspaceId]);
  return rows[0]?.position === null || rows[0]?.position === undefined ? 0 : Number(rows[0].position);
}

/** Every workspace's events after `after`, up to `through`, in position order: what the NATS publisher pages through. */
export async function readLogEvents(sql: Sql, query: { after: number; through: number; limit: number }): Promise<StoredEvent[]> {
  const { rows } = await sql.query<EventRow>(
    `SELECT position::text, id, workspace_id, subject, type, sequence::text, time, data, created_at
       FROM events
      WHERE position > $1 AND position <= $2
      ORDER BY events.position
      LIMIT $3`,
    [query.after, query.through, query.limit],
  );
  return rows.map(toStoredEvent);
}
