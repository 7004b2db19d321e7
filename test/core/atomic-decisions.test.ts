/**
 * Decisions are atomic: ingest judges a batch by the workspace state it commits under (a cutover that races it
 * waits, then wins); a poll's outcome is recorded whole or not at all; changing a connection is one statement.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Sql } from '../../src/core/db/database.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { createIngestGate } from '../../src/core/ingest/ingest-gate.ts';
import { createPollRunner } from '../../src/core/polling/poll-runner.ts';
import { updateConnection } from '../../src/core/registry/connections.ts';
import { createLogger } from '../../src/logging.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { samsaraContract } from '../../src/providers/samsara/contract.ts';
import { backend, createTestDatabase, postgresUrl, type TestDatabase } from '../support/database.ts';
import { createFleet, historyOf, update } from '../support/fleet.ts';

let database: TestDatabase;
const secretKey = randomBytes(32);

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

describe('ingest and workspace state', () => {
  it.runIf(backend === 'postgres')('judges a poll batch racing a cutover to legacy by the mode it commits under', async () => {
    const fleet = await createFleet(database.db, secretKey);
    const admin = new pg.Client({ connectionString: postgresUrl, options: `-c search_path=${database.schema}` });
    await admin.connect();
    try {
      // The cutover is under way: changed, not yet committed.
      await admin.query('BEGIN');
      await admin.query(`UPDATE cutover_states SET mode = 'legacy', changed_at = now() WHERE workspace_id = $1`, [fleet.workspaceId]);
      let settled = false;
      const batch = ingestBatch(database.db, [update(fleet, [{ signal: 'soc_pct', value: 70, observedAt: Date.now() - 1000 }], { source: 'poll' })]).finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(settled, 'the batch waits for the cutover').toBe(false);
      await admin.query('COMMIT');
      const outcome = await batch;
      expect(outcome.results[0]).toMatchObject({ status: 'rejected', reason: 'source_not_owner' });
      expect(await historyOf(database.db, fleet.vehicles[0]!.id)).toEqual([]);
    } finally {
      await admin.end();
    }
  });
});

describe('a poll outcome', () => {
  it('is recorded whole or not at all', async () => {
    const fleet = await createFleet(database.db, secretKey);
    const quiet: PollAdapter = {
      contract: samsaraContract as unknown as PollAdapter['contract'],
      async *poll() {
        yield { devices: [], cursor: { feeds: {} }, requests: 1 };
      },
    };
    const runner = createPollRunner(
      { db: database.db, ingestGate: createIngestGate({ concurrency: 2, queueLimit: 4, retryAfterMs: 500 }), secretKey, logger: createLogger({ level: 'silent', name: 't' }), adapters: new Map([['samsara', quiet]]) },
      { connectionConcurrency: 1, runDeadlineMs: 10_000, maxInlineRetryAfterMs: 500, transientRetries: 0 },
    );
    // The run record cannot be finished: the outcome's other writes must not stand without it.
    await database.db.exec(`
      CREATE FUNCTION refuse_finish() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'the run record cannot be written'; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse_finish BEFORE UPDATE ON poll_runs FOR EACH ROW WHEN (NEW.status <> 'running') EXECUTE FUNCTION refuse_finish();`);
    try {
      await runner.runWorkspace({ workspaceId: fleet.workspaceId, eventId: 'half' });
    } finally {
      await database.db.exec('DROP TRIGGER refuse_finish ON poll_runs; DROP FUNCTION refuse_finish();');
    }
    const { rows: state } = await database.db.query<{ last_success_at: Date | null; claimed_by: string | null }>(
      'SELECT last_success_at, claimed_by FROM connection_poll_states WHERE connection_id = $1',
      [fleet.connectionId],
    );
    expect(state[0]!.last_success_at).toBeNull();
    const { rows: marks } = await database.db.query('SELECT 1 FROM connection_sync_marks WHERE connection_id = $1', [fleet.connectionId]);
    expect(marks).toEqual([]);
    const { rows: runs } = await database.db.query<{ status: string }>('SELECT status FROM poll_runs WHERE connection_id = $1', [fleet.connectionId]);
    expect(runs).toEqual([{ status: 'running' }]);

    // The runner knows its run ended: the next poll takes the connection again, and records the outcome whole.
    await runner.runWorkspace({ workspaceId: fleet.workspaceId, eventId: 'whole' });
    const { rows: after } = await database.db.query<{ last_success_at: Date | null; claimed_by: string | null }>(
      'SELECT last_success_at, claimed_by FROM connection_poll_states WHERE connection_id = $1',
      [fleet.connectionId],
    );
    expect(after[0]).toMatchObject({ last_success_at: expect.any(Date), claimed_by: null });
  });
});

describe('changing a connection', () => {
  it('is one write: new credentials, the unreadable mark cleared and the poll state reset together', async () => {
    const fleet = await createFleet(database.db, secretKey);
    await database.db.query(`UPDATE provider_connections SET credentials_unreadable_at = now() WHERE id = $1`, [fleet.connectionId]);
    await database.db.query(
      `INSERT INTO connection_poll_states (workspace_id, connection_id, auth_failed_at, consecutive_failures) VALUES ($1, $2, now(), 4)`,
      [fleet.workspaceId, fleet.connectionId],
    );
    const statements: string[] = [];
    const changed = await updateConnection(recording(database.db, statements), secretKey, fleet.workspaceId, fleet.connectionId, { credentials: { apiToken: 'rotated-token' }, label: 'Renamed' });
    const writes = statements.filter((text) => /^\s*(WITH|UPDATE|INSERT|DELETE)\b/i.test(text));
    expect(writes).toHaveLength(1);
    expect(changed).toMatchObject({ label: 'Renamed', credentialsUnreadableAt: null, pollState: { authFailedAt: null, consecutiveFailures: 0 } });
  });
});

function recording(db: Database, statements: string[]): Database {
  const wrap = (sql: Sql): Sql => ({
    query: (text, params) => {
      statements.push(text);
      return sql.query(text, params);
    },
    exec: (script) => {
      statements.push(script);
      return sql.exec(script);
    },
  });
  return { ...wrap(db), kind: db.kind, transaction: (work) => db.transaction((tx) => work(wrap(tx))), withSession: (work) => db.withSession((s) => work(wrap(s))), close: () => db.close() };
}
