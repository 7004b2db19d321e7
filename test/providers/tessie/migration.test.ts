/**
 * migrations/0007_tessie_provider.sql on a database that holds data of the provider under its old name
 * (`tesla-telemetry`): every provider column follows the rename, the renamed connections keep the SoC field they
 * were storing, and nothing of another provider changes. Runs on the backend the project tests (PGlite, or a
 * schema of its own on PostgreSQL).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openPglite, openPostgres, type Database } from '../../../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../../../src/core/db/history-partitions.ts';
import { listMigrations, migrate } from '../../../src/core/db/migrate.ts';
import { backend, postgresUrl } from '../../support/database.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An empty database of the tested backend: nothing migrated yet. */
async function emptyDatabase(): Promise<Database> {
  if (backend === 'pglite') {
    const db = await openPglite();
    cleanups.push(() => db.close());
    return db;
  }
  const schema = `fw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const db = openPostgres({ url: postgresUrl, searchPath: schema, poolSize: 2 });
  cleanups.push(async () => {
    await db.close();
    const cleanup = new pg.Client({ connectionString: postgresUrl });
    await cleanup.connect();
    await cleanup.query(`DROP SCHEMA ${schema} CASCADE`);
    await cleanup.end();
  });
  return db;
}

describe('0007_tessie_provider', () => {
  it('renames tesla-telemetry to tessie wherever a provider is stored, and pins the renamed connections to Soc', async () => {
    const db = await emptyDatabase();
    const all = listMigrations();
    expect(all.map((m) => m.version)).toContain('0007_tessie_provider');
    await migrate(db, all.filter((m) => m.version < '0007'));

    const ws = randomUUID();
    const tesla = randomUUID();
    const samsara = randomUUID();
    const vehicle = randomUUID();
    const observedAt = '2026-01-15T12:00:00.000Z';
    await db.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'Old depot')`, [ws]);
    for (const [id, provider, transport] of [
      [tesla, 'tesla-telemetry', 'stream'],
      [samsara, 'samsara', 'poll'],
    ] as const) {
      await db.query(
        `INSERT INTO provider_connections (workspace_id, id, provider, transport, label, base_url, credentials_ciphertext)
         VALUES ($1, $2, $3, $4, $3, 'http://127.0.0.1:9', 'x')`,
        [ws, id, provider, transport],
      );
    }
    await db.query(`INSERT INTO vehicles (workspace_id, id, name) VALUES ($1, $2, 'Exec 1')`, [ws, vehicle]);
    await ensureHistoryPartitions(db, [Date.parse(observedAt)]);
    for (const [signal, connection, provider] of [
      ['soc_pct', tesla, 'tesla-telemetry'],
      ['odometer_km', samsara, 'samsara'],
    ]) {
      await db.query(
        `INSERT INTO signal_snapshot (workspace_id, vehicle_id, signal, value, observed_at, source, provider, connection_id)
         VALUES ($1, $2, $3, '50', $4, 'stream', $5, $6)`,
        [ws, vehicle, signal, observedAt, provider, connection],
      );
      await db.query(
        `INSERT INTO signal_history (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
         VALUES ($1, $2, $3, $4, '50', 'stream', $5, $6, $4)`,
        [ws, vehicle, signal, observedAt, provider, connection],
      );
    }
    const body = JSON.stringify({ provider: 'tesla-telemetry' });
    await db.query(
      `INSERT INTO ingest_rejections (workspace_id, reason, detail, provider, update_body) VALUES ($1, 'unknown_device', 'x', 'tesla-telemetry', $2)`,
      [ws, body],
    );

    expect(await migrate(db)).toContain('0007_tessie_provider');

    const providers = async (table: string) =>
      (await db.query<{ provider: string }>(`SELECT provider FROM ${table} WHERE workspace_id = $1 ORDER BY provider`, [ws])).rows.map((r) => r.provider);
    expect(await providers('provider_connections')).toEqual(['samsara', 'tessie']);
    expect(await providers('signal_snapshot')).toEqual(['samsara', 'tessie']);
    expect(await providers('signal_history')).toEqual(['samsara', 'tessie']);
    expect(await providers('ingest_rejections')).toEqual(['tessie']);
    const { rows } = await db.query<{ provider: string; options: Record<string, unknown> }>(
      'SELECT provider, options FROM provider_connections WHERE workspace_id = $1 ORDER BY provider',
      [ws],
    );
    expect(rows).toEqual([
      { provider: 'samsara', options: {} },
      { provider: 'tessie', options: { socField: 'Soc' } },
    ]);
    // The rejection keeps the update as it arrived.
    const kept = await db.query<{ update_body: { provider: string } }>('SELECT update_body FROM ingest_rejections WHERE workspace_id = $1', [ws]);
    expect(kept.rows[0]!.update_body.provider).toBe('tesla-telemetry');
  });
});
