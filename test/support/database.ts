/**
 * A fresh, migrated database for a test: an in-memory PGlite, or a schema of its own on the PostgreSQL named by
 * FLEETWIRE_TEST_DATABASE_URL (the project decides which; see vitest.config.ts).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPglite, openPostgres, type Database } from '../../src/core/db/database.ts';
import { migrate } from '../../src/core/db/migrate.ts';

export const backend = process.env.FLEETWIRE_TEST_BACKEND === 'postgres' ? 'postgres' : 'pglite';
const postgresUrl = process.env.FLEETWIRE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  db: Database;
  /** Where this test's job queue keeps its tables. */
  jobSchema: string;
  /** For PostgreSQL: the schema the test owns; reopen it with `reopen` (a second process, say). */
  schema?: string;
  reopen(): Promise<Database>;
  drop(): Promise<void>;
}

export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  if (backend === 'pglite') {
    const db = await openPglite();
    await migrate(db);
    return {
      db,
      jobSchema: 'fleetwire_jobs',
      reopen: async () => {
        throw new Error('an in-memory PGlite cannot be opened twice');
      },
      drop: () => db.close(),
    };
  }
  const schema = `fw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const open = () => openPostgres({ url: postgresUrl, searchPath: schema, poolSize: options.poolSize ?? 8 });
  const db = open();
  await migrate(db);
  return {
    db,
    schema,
    jobSchema: `${schema}_jobs`,
    reopen: async () => open(),
    drop: async () => {
      await db.close();
      const cleanup = new pg.Client({ connectionString: postgresUrl });
      await cleanup.connect();
      await cleanup.query(`DROP SCHEMA ${schema} CASCADE`);
      await cleanup.query(`DROP SCHEMA IF EXISTS ${schema}_jobs CASCADE`);
      await cleanup.end();
    },
  };
}

/** `url` with `search_path` set to `schema`, for a process that takes only a URL (a `fleetwire` child, say). */
export function withSearchPath(url: string, schema: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

export { postgresUrl };
