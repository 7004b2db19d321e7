/**
 * Applies the SQL migrations in `migrations/` in name order, once each, inside one transaction under an advisory
 * lock, so any number of core processes can start at once and only one applies a given migration.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.ts';

const migrationsDir = fileURLToPath(new URL('../../../migrations/', import.meta.url));

/** A fixed key for pg_advisory_xact_lock: "fleetwire migrate". */
const migrationLockKey = 7_265_112_001;

export interface Migration {
  version: string;
  sql: string;
}

export function listMigrations(dir: string = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name))
    .sort()
    .map((name) => ({ version: name.replace(/\.sql$/, ''), sql: readFileSync(`${dir}/${name}`, 'utf8') }));
}

/** Applies what is pending; answers the versions it applied (empty when the schema was current). */
export async function migrate(db: Database, migrations: Migration[] = listMigrations()): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [migrationLockKey]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: string }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const done: string[] = [];
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
      done.push(migration.version);
    }
    return done;
  });
}

/** True when every known migration is applied (for /readyz). */
let expectedVersions: string[] | undefined;

export async function isSchemaCurrent(db: Database): Promise<boolean> {
  expectedVersions ??= listMigrations().map((m) => m.version);
  const expected = expectedVersions;
  try {
    const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    return expected.every((version) => applied.has(version));
  } catch {
    return false;
  }
}
