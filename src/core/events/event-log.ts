/**
 * The event log's SQL: events written in the unit of work that causes them (numbered per subject), the sequencer
 * that gives committed events their log position, and reads by position.
 */
import type { Database, Sql } from '../db/database.ts';
import type { EventDraft, EventType, StoredEvent } from './catalogue.ts';

/**
 * Writes events inside the caller's transaction, each numbered after its subject's last: one statement. The subject
 * rows are locked in one order, so two units of work that touch one subject number its events in commit order.
 */
export async function writeEvents(tx: Sql, drafts: readonly EventDraft[]): Promise<void> {
  if (drafts.length === 0) return;
  await tx.query(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb)
         AS r(ord int, id uuid, workspace_id uuid, subject text, type text, time timestamptz, data jsonb)
     ),
     counts AS (SELECT workspace_id, subject, count(*)::bigint AS n FROM input GROUP BY workspace_id, subject),
     bumped AS (
       INSERT INTO event_subjects AS s (workspace_id, subject, last_sequence)
       SELECT workspace_id, subject, n FROM counts ORDER BY workspace_id, subject
       ON CONFLICT (workspace_id, subject) DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
       RETURNING s.workspace_id, s.subject, s.last_sequence
     )
     INSERT INTO events (id, workspace_id, subject, type, sequence, time, data)
     SELECT i.id, i.workspace_id, i.subject, i.type,
            b.last_sequence - c.n + row_number() OVER (PARTITION BY i.workspace_id, i.subject ORDER BY i.ord),
            i.time, i.data
       FROM input i
       JOIN counts c ON c.workspace_id = i.workspace_id AND c.subject = i.subject
       JOIN bumped b ON b.workspace_id = i.workspace_id AND b.subject = i.subject
      ORDER BY i.ord`,
    [
      JSON.stringify(
        drafts.map((d, ord) => ({ ord, id: d.id, workspace_id: d.workspaceId, subject: d.subject, type: d.type, time: d.time, data: d.data })),
      ),
    ],
  );
}

/** A fixed key for pg_try_advisory_xact_lock: "fleetwire event sequencer". */
const sequencerLockKey = 7_265_112_010;

/**
 * Gives up to `limit` committed events without a position the next positions, in insertion order (which keeps each
 * subject's order), and answers the new head; undefined when another process is sequencing right now. The lock is
 * taken by the transaction's first statement, so the second sees every position the last sequencer gave.
 */
export async function sequenceEvents(db: Database, limit = 5000): Promise<{ head: number; sequenced: number } | undefined> {
  return db.transaction(async (tx) => {
    const { rows: lock } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [sequencerLockKey]);
    if (!lock[0]?.ok) return undefined;
    const { rows } = await tx.query<{ head: string; sequenced: string }>(
      `WITH next AS (
         SELECT insert_order, row_number() OVER (ORDER BY insert_order) AS n
           FROM (SELECT insert_order FROM events WHERE position IS NULL ORDER BY insert_order LIMIT $1) unpositioned
       ),
       head AS (
         UPDATE event_log_head SET last_position = last_position + (SELECT count(*) FROM next)
         RETURNING last_position, last_position - (SELECT count(*) FROM next) AS base
       ),
       positioned AS (
         UPDATE events e SET position = head.base + next.n
           FROM next, head
          WHERE e.insert_order = next.insert_order
         RETURNING 1
       )
       SELECT (SELECT last_position FROM head)::text AS head, (SELECT count(*) FROM positioned)::text AS sequenced`,
      [limit],
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
