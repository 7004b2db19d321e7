/**
 * Sync marks are kept per connection: a successful poll and a stream report confirm a connection (one row), and a
 * vehicle's lastSyncedAt is derived from its connections when it is read. So a poll over 10,000 bound vehicles
 * writes no vehicle row, and ingest (which locks vehicles in id order) can never deadlock with polls and stream
 * reports (which used to update the same rows in join order).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlErrorIs, type Database } from '../../src/core/db/database.ts';
import { countVehiclesByStatus } from '../../src/core/health/health-queries.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { createIngestGate } from '../../src/core/ingest/ingest-gate.ts';
import { createPollRunner } from '../../src/core/polling/poll-runner.ts';
import { claimPollRun, recordPollOutcome } from '../../src/core/polling/poll-store.ts';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createWorkspace } from '../../src/core/registry/workspaces.ts';
import { acquireStreamLeases, recordStreamStatus } from '../../src/core/streams/stream-store.ts';
import { createLogger } from '../../src/logging.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { samsaraContract } from '../../src/providers/samsara/contract.ts';
import { backend, createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
const secretKey = randomBytes(32);
const logger = createLogger({ level: 'silent', name: 'sync-marks-test' });

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

/** A workspace with `n` vehicles, each bound to a Samsara (poll) device and a Traccar (stream) device, made set-based. */
async function boundFleet(db: Database, n: number) {
  const workspaceId = (await createWorkspace(db, { name: `Fleet of ${n}` })).id;
  const poll = await createConnection(db, secretKey, workspaceId, { provider: 'samsara', transport: 'poll', credentials: { apiToken: 'marks-token' } });
  const stream = await createConnection(db, secretKey, workspaceId, { provider: 'traccar', transport: 'stream', baseUrl: 'http://127.0.0.1:1', credentials: { token: 'marks-token' } });
  const ids = Array.from({ length: n }, () => randomUUID());
  await db.query(
    `INSERT INTO vehicles (workspace_id, id, name, last_observed_at)
     SELECT $1, id, 'Vehicle ' || ord, now() - interval '1 minute' FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord)`,
    [workspaceId, ids],
  );
  await db.query(
    `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id, created_at)
     SELECT $1, c.id, 'dev-' || ord, u.id, now() - interval '1 hour'
       FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord) CROSS JOIN unnest($3::uuid[]) AS c(id)`,
    [workspaceId, ids, [poll.id, stream.id]],
  );
  return { workspaceId, pollId: poll.id, streamId: stream.id, ids };
}

/** Each vehicle row's version (its xmin): it changes whenever the row is written. */
async function rowVersions(db: Database, workspaceId: string): Promise<Map<string, string>> {
  const { rows } = await db.query<{ id: string; version: string }>('SELECT id, xmin::text AS version FROM vehicles WHERE workspace_id = $1', [workspaceId]);
  return new Map(rows.map((r) => [r.id, r.version]));
}

/** A Samsara stand-in that answers one page with nothing new: all a poll of a quiet fleet does. */
const quietProvider: PollAdapter = {
  contract: samsaraContract as unknown as PollAdapter['contract'],
  async *poll() {
    yield { devices: [], cursor: { feeds: {} }, requests: 1 };
  },
};

describe('sync marks per connection', () => {
  it('confirms 10,000 bound vehicles with one successful poll without writing any vehicle row', async () => {
    const fleet = await boundFleet(database.db, 10_000);
    const before = await rowVersions(database.db, fleet.workspaceId);
    const runner = createPollRunner(
      { db: database.db, ingestGate: createIngestGate({ concurrency: 2, queueLimit: 8, retryAfterMs: 1000 }), secretKey, logger, adapters: new Map([['samsara', quietProvider]]) },
      { connectionConcurrency: 4, runDeadlineMs: 20_000, maxInlineRetryAfterMs: 1000, transientRetries: 0 },
    );
    await runner.runWorkspace({ workspaceId: fleet.workspaceId, eventId: 'quiet' });

    const { rows: runs } = await database.db.query<{ status: string }>('SELECT status FROM poll_runs WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(runs).toEqual([{ status: 'succeeded' }]);
    const after = await rowVersions(database.db, fleet.workspaceId);
    const rewritten = [...after].filter(([id, version]) => before.get(id) !== version);
    expect(rewritten).toHaveLength(0);
    const { rows: marks } = await database.db.query<{ connection_id: string }>('SELECT connection_id FROM connection_sync_marks WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(marks.map((m) => m.connection_id)).toEqual([fleet.pollId]);
    // Every vehicle is confirmed all the same: fresh, by the derived sync time.
    const counts = await countVehiclesByStatus(database.db, [fleet.workspaceId], Date.now());
    expect(counts.get(fleet.workspaceId)).toEqual({ fresh: 10_000, stale: 0, silent: 0, never: 0 });
  }, 120_000);

  it('does not confirm a vehicle whose device was bound after the connection was last confirmed', async () => {
    const fleet = await boundFleet(database.db, 2);
    await database.db.query('INSERT INTO connection_sync_marks (workspace_id, connection_id, confirmed_at) VALUES ($1, $2, now())', [fleet.workspaceId, fleet.pollId]);
    await database.db.query(`UPDATE device_bindings SET created_at = now() + interval '1 minute' WHERE vehicle_id = $1`, [fleet.ids[1]]);
    const counts = await countVehiclesByStatus(database.db, [fleet.workspaceId], Date.now());
    expect(counts.get(fleet.workspaceId)).toMatchObject({ fresh: 1, stale: 1 });
  });

  it.runIf(backend === 'postgres')('never deadlocks ingest, poll outcomes and stream reports on the same 500 vehicles (200 rounds)', async () => {
    const fleet = await boundFleet(database.db, 500);
    const seen = { deadlocks: 0, ingested: 0 };
    const db = watchingDeadlocks(database.db, seen);
    const holder = 'marks-holder';
    await acquireStreamLeases(db, secretKey, { holder, wanted: [fleet.streamId], release: [], leaving: false }, 600);
    const shuffled = () => [...fleet.ids.keys()].sort(() => Math.random() - 0.5);
    const start = Date.now() - 3_600_000;
    for (let round = 0; round < 200; round += 1) {
      const updates = shuffled().map((i) => ({
        workspaceId: fleet.workspaceId,
        provider: 'samsara',
        connectionId: fleet.pollId,
        externalDeviceId: `dev-${i + 1}`,
        source: 'poll',
        receivedAt: new Date().toISOString(),
        readings: [{ signal: 'soc_pct', value: (round + i) % 100, observedAt: new Date(start + round * 1000 + i).toISOString() }],
      }));
      const claim = `marks/${round}`;
      const [outcome] = await Promise.all([
        ingestBatch(db, updates),
        (async () => {
          const runId = await claimPollRun(db, { workspaceId: fleet.workspaceId, connectionId: fleet.pollId, provider: 'samsara', eventId: null, runner: 'marks', claim, claimMs: 60_000, mine: 'marks/', running: [] });
          await recordPollOutcome(db, { workspaceId: fleet.workspaceId, connectionId: fleet.pollId, runId: runId!, claim }, { status: 'succeeded', confirms: true }, { requests: 1, pages: 1, skipped: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0 });
        })(),
        recordStreamStatus(db, holder, [streamStatus(fleet.streamId)], 90),
      ]);
      seen.ingested += outcome.counts.accepted;
    }
    expect(seen.deadlocks).toBe(0);
    expect(seen.ingested).toBe(200 * 500);
  }, 180_000);
});

function streamStatus(connectionId: string) {
  const now = new Date().toISOString();
  return {
    connectionId,
    connected: true,
    sockets: 1,
    socketsOpen: 1,
    lastMessageAt: now,
    lastHeartbeatAt: now,
    connectedSince: now,
    reconnects: 0,
    readingsIn: 0,
    delivered: 0,
    coalesced: 0,
    dropped: 0,
    buffered: 0,
    badFrames: 0,
    deadLettered: 0,
    lastErrorClass: null,
    lastError: null,
    lastErrorAt: null,
    nextReconnectAt: null,
  };
}

/** The database, counting every deadlock any statement or transaction on it meets (even those retried). */
function watchingDeadlocks(db: Database, seen: { deadlocks: number }): Database {
  const watch = async <T,>(work: Promise<T>): Promise<T> => {
    try {
      return await work;
    } catch (error) {
      if (sqlErrorIs(error, 'deadlock_detected')) seen.deadlocks += 1;
      throw error;
    }
  };
  return {
    kind: db.kind,
    query: (text, params) => watch(db.query(text, params)),
    exec: (script) => watch(db.exec(script)),
    transaction: (work) => watch(db.transaction(work)),
    withSession: (work) => watch(db.withSession(work)),
    close: () => db.close(),
  };
}
