/**
 * Daily partitions of `signal_history`. Maintenance creates them ahead (yesterday to a week out, at start and on
 * every maintenance run), so ingest normally finds the partition of every reading it gets. A reading for a day
 * without one (a backfill into the past) gets its partition before the ingest transaction opens.
 *
 * A partition is never made with `CREATE TABLE ... PARTITION OF`, which takes an ACCESS EXCLUSIVE lock on
 * `signal_history` and so waits behind every open reader and writer of the history (and everything queues behind
 * it). It is created as a table of its own and attached (`ATTACH PARTITION` takes SHARE UPDATE EXCLUSIVE on the
 * parent, which neither reads nor inserts conflict with), under an advisory lock so concurrent processes never race
 * on one day, and with a lock timeout so it can never stall anything for long. There is no default partition: it
 * would force ATTACH to lock and scan it, and would rule out DETACH ... CONCURRENTLY, which retention uses.
 * Known partitions are remembered per database handle.
 */
import type { Database, Sql } from './database.ts';

const dayMs = 86_400_000;
/** A fixed key for pg_advisory_xact_lock: "fleetwire history partitions". */
const partitionLockKey = 7_265_112_002;
/** Days ahead of today that maintenance keeps partitions for. */
export const partitionDaysAhead = 7;
/** How long an attach may wait for its lock before it gives up (it is tried again by the next caller). */
const attachLockTimeoutMs = 5000;

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

/** The days among `daysMs` (day starts) that have no partition, as far as this process knows. */
export async function missingHistoryPartitions(db: Database, daysMs: Iterable<number>): Promise<number[]> {
  const names = await knownPartitions(db);
  return [...new Set(daysMs)].filter((day) => !names.has(partitionName(day)));
}

/** Makes sure a partition exists for each day that any of `instantsMs` falls on. Never inside a caller's transaction. */
export async function ensureHistoryPartitions(db: Database, instantsMs: Iterable<number>): Promise<void> {
  const names = await knownPartitions(db);
  const missing = new Map<string, number>();
  for (const ms of instantsMs) {
    const day = dayStart(ms);
    const name = partitionName(day);
    if (!names.has(name)) missing.set(name, day);
  }
  if (missing.size === 0) return;
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [partitionLockKey]);
    await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${attachLockTimeoutMs}ms`]);
    // Another process may have made some of them while this one waited for the lock.
    const existing = new Set(await listHistoryPartitions(tx));
    for (const [name, day] of missing) {
      if (existing.has(name)) continue;
      const from = new Date(day).toISOString();
      const to = new Date(day + dayMs).toISOString();
      await tx.exec(
        `CREATE TABLE ${name} (LIKE signal_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
         ALTER TABLE signal_history ATTACH PARTITION ${name} FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }
  });
  for (const name of missing.keys()) names.add(name);
}

/** The partitions maintenance keeps ready around `nowMs`: yesterday (late readings) to `partitionDaysAhead` out. */
export function upcomingDays(nowMs: number): number[] {
  return Array.from({ length: partitionDaysAhead + 2 }, (_, i) => dayStart(nowMs) + (i - 1) * dayMs);
}

/** Forgets what this process knows of partitions (after a partition was dropped, or an insert found none). */
export function forgetHistoryPartitions(db: Database): void {
  known.delete(db);
}
