/**
 * Migrations and history partitions: applied once however many processes start at once; partitions created on
 * demand, once, for whatever day a reading falls on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHistoryPartitions, listHistoryPartitions, partitionDay, partitionName } from '../../src/core/db/history-partitions.ts';
import { isSchemaCurrent, listMigrations, migrate } from '../../src/core/db/migrate.ts';
import type { Database } from '../../src/core/db/database.ts';
import { backend, createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

describe('migrate', () => {
  it('is idempotent and leaves the schema current', async () => {
    expect(await migrate(database.db)).toEqual([]);
    expect(await isSchemaCurrent(database.db)).toBe(true);
    const { rows } = await database.db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(listMigrations().map((m) => m.version));
  });

  it.runIf(backend === 'postgres')('applies each migration once when several processes migrate at the same moment', async () => {
    const fresh = await createTestDatabase();
    try {
      // An empty schema, migrated by three connections at once.
      await fresh.db.exec(`DROP SCHEMA ${fresh.schema} CASCADE; CREATE SCHEMA ${fresh.schema}`);
      const handles: Database[] = [await fresh.reopen(), await fresh.reopen(), await fresh.reopen()];
      const applied = await Promise.all(handles.map((db) => migrate(db)));
      expect(applied.flat()).toEqual(listMigrations().map((m) => m.version));
      await Promise.all(handles.map((db) => db.close()));
    } finally {
      await fresh.drop();
    }
  });
});

describe('history partitions', () => {
  it('creates one daily partition per day touched, named by the day', async () => {
    const day = Date.UTC(2026, 0, 15, 13, 30);
    expect(partitionName(day)).toBe('signal_history_p20260115');
    expect(partitionDay('signal_history_p20260115')).toBe(Date.UTC(2026, 0, 15));
    await Promise.all([
      ensureHistoryPartitions(database.db, [day, day + 3600_000]),
      ensureHistoryPartitions(database.db, [day + 86_400_000]),
    ]);
    const names = await listHistoryPartitions(database.db);
    expect(names).toEqual(expect.arrayContaining(['signal_history_p20260115', 'signal_history_p20260116']));
    expect(names.filter((n) => n === 'signal_history_p20260115')).toHaveLength(1);
    // A row for that day lands in its partition.
    await database.db.query(
      `INSERT INTO signal_history (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
       VALUES (gen_random_uuid(), gen_random_uuid(), 'soc_pct', $1, '50', 'poll', 'samsara', gen_random_uuid(), now())`,
      [new Date(day).toISOString()],
    );
    const { rows } = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signal_history_p20260115');
    expect(rows[0]!.n).toBe(1);
  });
});
