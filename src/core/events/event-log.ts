/**
 * The event log's SQL: events written in the unit of work that causes them (numbered per subject and given their
 * log position), the head, and reads by position.
 */
import { intArray, jsonRecords, textArray } from '../db/array-literal.ts';
import type { Sql } from '../db/database.ts';
import type { EventDraft, EventType, StoredEvent } from './catalogue.ts';

const vehiclePrefix = 'vehicles/';

/**
 * Writes events inside the caller's transaction, each numbered after its subject's last and given the next log
 * positions. Call it once, as the transaction's last write: subject counters are locked first (in one order, so two
 * units of work that touch one subject number its events in commit order), then the log's head row, which the
 * transaction holds until it commits. Units of work that write events therefore commit their positions one after the
 * other, in position order, for only the time of the insert and the commit: positions are dense, in commit order, and
 * never appear below one a reader has seen, and each event row is written once.
 *
 * A vehicle's counter is its row's `last_event_sequence`; other subjects (a connection, the workspace) have an
 * `event_subjects` row. A draft that comes with its `sequence` was numbered by its caller, which holds the counter
 * and has advanced it in its own writes (the ingest unit of work, on the vehicle rows it locked first); the others
 * are numbered here. Columns go as array literals and the payloads as separated JSON texts
 * (`src/core/db/array-literal.ts`).
 */
export async function writeEvents(tx: Sql, drafts: readonly EventDraft[]): Promise<void> {
  const numbered = await numberEvents(tx, drafts);
  if (numbered.length === 0) return;
  await tx.query(
    `WITH head AS (
       UPDATE event_log_head SET last_position = last_position + $7 RETURNING last_position - $7 AS base
     )
     INSERT INTO events (id, workspace_id, subject, type, sequence, time, data, position)
     SELECT r.id, r.workspace_id, r.subject, r.type, r.sequence, r.time, r.data, head.base + r.ord
       FROM head, ROWS FROM (
              unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::text[]), unnest($5::timestamptz[]),
              string_to_table($6, E'\\x1e'), unnest($8::bigint[]))
            WITH ORDINALITY AS r(id, workspace_id, subject, type, time, data, sequence, ord)
      ORDER BY r.ord`,
    [
      textArray(numbered.map((d) => d.id)),
      textArray(numbered.map((d) => d.workspaceId)),
      textArray(numbered.map((d) => d.subject)),
      textArray(numbered.map((d) => d.type)),
      textArray(numbered.map((d) => d.time)),
      jsonRecords(numbered.map((d) => JSON.stringify(d.data))),
      numbered.length,
      intArray(numbered.map((d) => d.sequence)),
    ],
  );
}

/**
 * Gives each draft without a sequence the next ones of its subject, advancing the counters: vehicles' rows locked
 * in (workspace, vehicle) order as ingest locks them, then the other subjects' rows upserted in (workspace, subject)
 * order. The drafts of a vehicle deleted meanwhile are dropped: there is no one left to tell about it.
 */
async function numberEvents(tx: Sql, drafts: readonly EventDraft[]): Promise<(EventDraft & { sequence: number })[]> {
  const perSubject = new Map<string, number>();
  const rank: number[] = [];
  for (const d of drafts) {
    if (d.sequence !== undefined) continue;
    const key = `${d.workspaceId} ${d.subject}`;
    const n = (perSubject.get(key) ?? 0) + 1;
    perSubject.set(key, n);
    rank.push(n);
  }
  const last = new Map<string, number>();
  if (perSubject.size > 0) {
    const counters = [...perSubject].map(([key, n]) => ({ workspaceId: key.slice(0, key.indexOf(' ')), subject: key.slice(key.indexOf(' ') + 1), n, key }));
    const vehicles = counters.filter((c) => c.subject.startsWith(vehiclePrefix)).sort((a, b) => (a.key < b.key ? -1 : 1));
    const others = counters.filter((c) => !c.subject.startsWith(vehiclePrefix));
    if (vehicles.length > 0) {
      const ids = [textArray(vehicles.map((c) => c.workspaceId)), textArray(vehicles.map((c) => c.subject.slice(vehiclePrefix.length)))];
      await tx.query(
        `SELECT 1 FROM vehicles v JOIN unnest($1::uuid[], $2::uuid[]) AS k(workspace_id, id) ON v.workspace_id = k.workspace_id AND v.id = k.id
          ORDER BY v.workspace_id, v.id FOR NO KEY UPDATE OF v`,
        ids,
      );
      const { rows } = await tx.query<{ workspace_id: string; id: string; last_event_sequence: string }>(
        `UPDATE vehicles v SET last_event_sequence = v.last_event_sequence + c.n
           FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS c(workspace_id, id, n)
          WHERE v.workspace_id = c.workspace_id AND v.id = c.id
         RETURNING v.workspace_id, v.id, v.last_event_sequence::text`,
        [...ids, intArray(vehicles.map((c) => c.n))],
      );
      for (const r of rows) last.set(`${r.workspace_id} ${vehiclePrefix}${r.id}`, Number(r.last_event_sequence));
    }
    if (others.length > 0) {
      const { rows } = await tx.query<{ workspace_id: string; subject: string; last_sequence: string }>(
        `INSERT INTO event_subjects AS s (workspace_id, subject, last_sequence)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[]) ORDER BY 1, 2
         ON CONFLICT (workspace_id, subject) DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
         RETURNING s.workspace_id, s.subject, s.last_sequence::text`,
        [textArray(others.map((c) => c.workspaceId)), textArray(others.map((c) => c.subject)), intArray(others.map((c) => c.n))],
      );
      for (const r of rows) last.set(`${r.workspace_id} ${r.subject}`, Number(r.last_sequence));
    }
  }
  const numbered: (EventDraft & { sequence: number })[] = [];
  let next = 0;
  for (const d of drafts) {
    if (d.sequence !== undefined) {
      numbered.push(d as EventDraft & { sequence: number });
      continue;
    }
    const key = `${d.workspaceId} ${d.subject}`;
    const r = rank[next++]!;
    const top = last.get(key);
    if (top !== undefined) numbered.push({ ...d, sequence: top - perSubject.get(key)! + r });
  }
  return numbered;
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
  /** The JSON text writeEvents stored (a `text` column: migration 0015). */
  data: string;
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
    data: JSON.parse(row.data) as Record<string, unknown>,
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
