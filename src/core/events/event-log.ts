/**
 * The event log's SQL: events written in the unit of work that causes them (numbered per subject), the sequencer
 * that gives committed events their log position, and reads by position.
 */
import { intArray, jsonArray, textArray } from '../db/array-literal.ts';
import type { Database, Sql } from '../db/database.ts';
import type { EventDraft, EventType, StoredEvent } from './catalogue.ts';

/**
 * Writes events inside the caller's transaction, each numbered after its subject's last: one statement. The subject
 * rows are locked in one order, so two units of work that touch one subject number its events in commit order.
 * Each event's rank among its subject's events here, and their count, are worked out before the statement, so the
 * database only adds them to the subject's last number; columns go as array literals and the payloads as one JSON
 * array (`src/core/db/array-literal.ts`).
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
  await tx.query(
    `WITH input AS (
       SELECT * FROM ROWS FROM (
                unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::text[]), unnest($5::timestamptz[]),
                json_array_elements($6::json), unnest($7::int[]), unnest($8::int[]))
         WITH ORDINALITY AS r(id, workspace_id, subject, type, time, data, rank, n, ord)
     ),
     bumped AS (
       INSERT INTO event_subjects AS s (workspace_id, subject, last_sequence)
       SELECT workspace_id, subject, n FROM input WHERE rank = 1 ORDER BY workspace_id, subject
       ON CONFLICT (workspace_id, subject) DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
       RETURNING s.workspace_id, s.subject, s.last_sequence
     )
     INSERT INTO events (id, workspace_id, subject, type, sequence, time, data)
     SELECT i.id, i.workspace_id, i.subject, i.type, b.last_sequence - i.n + i.rank, i.time, i.data
       FROM input i
       JOIN bumped b ON b.workspace_id = i.workspace_id AND b.subject = i.subject
      ORDER BY i.ord`,
    [
      textArray(drafts.map((d) => d.id)),
      textArray(drafts.map((d) => d.workspaceId)),
      textArray(drafts.map((d) => d.subject)),
      textArray(drafts.map((d) => d.type)),
      textArray(drafts.map((d) => d.time)),
      jsonArray(drafts.map((d) => JSON.stringify(d.data))),
      intArray(rank),
      intArray(keys.map((key) => perSubject.get(key)!)),
    ],
  );
}

/**
 * The sequencer's advisory lock, one per schema: advisory locks are database-wide, and two deployments (or test runs)
 * in schemas of one database each have their own log to sequence, so they must not skip each other's rounds.
 */
const sequencerLockSql = `SELECT pg_try_advisory_xact_lock(hashtextextended('fleetwire event sequencer:' || current_schema(), 0)) AS ok`;

/**
 * Gives up to `limit` committed events without a position the next positions, in insertion order (which keeps each
 * subject's order), and answers the new head; undefined when another process is sequencing right now. The lock is
 * taken by the transaction's first statement, so the next sees every position the last sequencer gave. The events
 * to position are found first and named to the update as a list, which it finds by primary key: left to the
 * planner's estimates, the update was joined against the whole retained log, or, with statistics taken while
 * nothing waited, looped over the list once per event. A round with nothing to position writes nothing.
 */
export async function sequenceEvents(db: Database, limit = 5000): Promise<{ head: number; sequenced: number } | undefined> {
  return db.transaction(async (tx) => {
    const { rows: lock } = await tx.query<{ ok: boolean }>(sequencerLockSql);
    if (!lock[0]?.ok) return undefined;
    const { rows: found } = await tx.query<{ orders: string | null; n: number; head: string }>(
      `SELECT array_agg(insert_order ORDER BY insert_order)::text AS orders, count(*)::int AS n,
              (SELECT last_position FROM event_log_head)::text AS head
         FROM (SELECT insert_order FROM events WHERE position IS NULL ORDER BY insert_order LIMIT $1) unpositioned`,
      [limit],
    );
    const { orders, n, head } = found[0]!;
    if (n === 0 || orders === null) return { head: Number(head), sequenced: 0 };
    const { rows } = await tx.query<{ head: string; sequenced: string }>(
      `WITH head AS (
         UPDATE event_log_head SET last_position = last_position + $2 RETURNING last_position
       ),
       positioned AS (
         UPDATE events e SET position = (SELECT last_position FROM head) - $2 + u.n
           FROM unnest($1::bigint[]) WITH ORDINALITY AS u(insert_order, n)
          WHERE e.insert_order = u.insert_order
         RETURNING 1
       )
       SELECT (SELECT last_position FROM head)::text AS head, (SELECT count(*) FROM positioned)::text AS sequenced`,
      [orders, n],
    );
    return { head: Number(rows[0]!.head), sequenced: Number(rows[0]!.sequenced) };
  });
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
