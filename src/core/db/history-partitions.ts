/**
 * Daily partitions of `signal_history`, created on demand. Ingest asks for the days its readings fall on before
 * it opens its transaction; a partition is created once, under an advisory lock, so concurrent processes never
 * race on the same CREATE. Known partitions are remembered per database handle.
 */
import type { Database, Sql } from './database.ts';

const dayMs = 86_400_000;
/** A fixed key for pg_advisory_xact_lock: "fleetwire history partitions". */
const partitionLockKey = 7_265_112_002;

const known = new WeakMap<Database, Set<string>>();

export function dayStart(ms: number): number {
  return Math.floor(ms / dayMs) * dayMs;
}

export function partitionName(dayStartMs: number): string {
  return `signal_history_p${new Date(dayStartMs).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

/** The day a partition covers, from its name; undefined for a name that is not one of ours. */
export function partitionDay(name: string): number | undefined {
  const match = /^signal_history_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (!match) return undefined;
  return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
}

export async function listHistoryPartitions(sql: Sql): Promise<string[]> {
  const { rows } = await sql.query<{ name: string }>(
    `SELECT c.relname AS name
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.oid = 'signal_history'::regclass
      ORDER BY c.relname`,
  );
  return rows.map((row) => row.name);
}

async function knownPartitions(db: Database): Promise<Set<string>> {
  let names = known.get(db);
  if (!names) {
    names = new Set(await listHistoryPartitions(db));
    known.set(db, names);
  }
  return names;
}

/** Makes sure a partition exists for each day that any of `instantsMs` falls on. */
export async function ensureHistoryPartitions(db: Database, instantsMs: Iterable<number>): Promise<void> {
  const names = await knownPartitions(db);
  const days = new Set<number>();
  for (const ms of instantsMs) days.add(dayStart(ms));
  const missing = new Map<string, number>();
  for (const day of days) {
    const name = partitionName(day);
    if (!names.has(name)) missing.set(name, day);
  }
  if (missing.size === 0) return;
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [partitionLockKey]);
    for (const [name, day] of missing) {
      const from = new Date(day).toISOString();
      const to = new Date(day + dayMs).toISOString();
      await tx.exec(
        `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF signal_history FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }
  });
  for (const name of missing.keys()) names.add(name);
}

/** Forgets what this process knows of partitions (after a partition was dropped, or an insert found none). */
export function forgetHistoryPartitions(db: Database): void {
  known.delete(db);
}
