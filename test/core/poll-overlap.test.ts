/**
 * One poller per connection, always: two core processes on one PostgreSQL, one workspace of 12 connections (three
 * times the connections one process polls at once) and a provider slow enough that polling them all takes longer
 * than the poll job may live. No connection is ever polled by two processes at the same time (the provider records
 * every request per connection), and no run is left running.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createVehicle } from '../../src/core/registry/vehicles.ts';
import { createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { postScheduledEvent, startCoreProcess, type CoreProcess } from '../support/core-processes.ts';
import { backend, createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startSlowSamsara, type SlowSamsara } from '../support/slow-samsara.ts';
import { until } from '../support/stream.ts';

const secretKey = randomBytes(32);
const serviceToken = `fws_overlap_${randomBytes(16).toString('hex')}`;
const connections = 12;

let database: TestDatabase;
let provider: SlowSamsara;
let workspaceId: string;
const cores: CoreProcess[] = [];

const startCore = (name: string) =>
  startCoreProcess(name, database, { adminToken: `fwa_overlap_${randomBytes(16).toString('hex')}`, serviceToken, secretKey }, cores, { FLEETWIRE_POLL_CONCURRENCY: '4' });
const postEvent = (url: string) => postScheduledEvent(url, serviceToken, workspaceId);

describe.runIf(backend === 'postgres')('a workspace poll that outlives its job', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    // A connection read from the start takes 2 groups x 4 pages x 2.5 s = 20 s; 12 of them, 4 at a time, a minute.
    provider = await startSlowSamsara({ pages: 4, slowMs: 2500 });
    workspaceId = (await createWorkspace(database.db, { name: 'Slow depot', policy: { ...defaultPolicy, pollIntervalSeconds: 10 } })).id;
    for (let i = 0; i < connections; i += 1) {
      const connection = await createConnection(database.db, secretKey, workspaceId, {
        provider: 'samsara',
        transport: 'poll',
        baseUrl: provider.url,
        credentials: { apiToken: `slow-${String(i).padStart(2, '0')}` },
        label: `Slow ${i}`,
      });
      await createVehicle(database.db, workspaceId, { name: `Slow vehicle ${i}`, devices: [{ connectionId: connection.id, externalId: `slow-${i}` }] });
    }
    await Promise.all([startCore('a'), startCore('b')]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(cores.map((core) => core.process.stop('SIGKILL')));
    await provider?.stop();
    await database?.drop();
  });

  it('never polls one connection from two processes at once, and leaves no run running', async () => {
    // Polls are asked for all along, at both processes: the job of the first poll expires while the provider is
    // still slow, and a second process is free to take what the queue hands it.
    const asking = setInterval(() => void Promise.all(cores.map((core) => postEvent(core.url))).catch(() => undefined), 5000);
    try {
      await Promise.all(cores.map((core) => postEvent(core.url)));
      await until('every connection to be polled to the end of its feed', async () => {
        const { rows } = await database.db.query<{ n: number }>(
          `SELECT count(DISTINCT connection_id)::int AS n FROM poll_runs WHERE workspace_id = $1 AND status = 'succeeded'`,
          [workspaceId],
        );
        return rows[0]!.n === connections;
      }, 150_000);
    } finally {
      clearInterval(asking);
    }
    expect(provider.overlaps()).toEqual([]);
    expect(provider.calls.size).toBe(connections);

    const settled = await until('every run to end', async () => {
      const { rows } = await database.db.query<{ status: string; error_class: string | null; error_message: string | null }>(
        'SELECT status, error_class, error_message FROM poll_runs WHERE workspace_id = $1',
        [workspaceId],
      );
      return rows.every((r) => r.status !== 'running') ? rows : undefined;
    }, 60_000);
    // Connections cut off at the deadline fail as transient and carry on next time; none was moved under a poller.
    expect(settled.filter((r) => r.error_class === 'internal')).toEqual([]);
    expect(provider.overlaps()).toEqual([]);
  }, 240_000);
});
