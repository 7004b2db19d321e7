/**
 * Several core processes on one PostgreSQL: a due workspace is polled by exactly one of them, and when the
 * process holding a poll dies (SIGKILL mid-poll), another takes the work over within a minute.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { FaultInjector } from '../../src/sim/faults.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { postScheduledEvent, startCoreProcess, type CoreProcess } from '../support/core-processes.ts';
import { backend, createTestDatabase, type TestDatabase } from '../support/database.ts';
import { connectSimulator, expectStoreMatchesGroundTruth, type SimulatedConnection } from '../support/simulated.ts';
import { until } from '../support/stream.ts';

const secretKey = randomBytes(32);
const adminToken = `fwa_cluster_${randomBytes(16).toString('hex')}`;
const serviceToken = `fws_cluster_${randomBytes(16).toString('hex')}`;
const faults = new FaultInjector();
const fleet = new FleetModel({ seed: 31, vehicles: 5, startMs: Date.now() - 10 * 60_000, timeScale: 5 });

let database: TestDatabase;
let simulator: RunningSimulator;
let workspaceId: string;
let connection: SimulatedConnection;
const cores: CoreProcess[] = [];

const startCore = (name: string) => startCoreProcess(name, database, { adminToken, serviceToken, secretKey }, cores);
const postEvent = (url: string, id: string) => postScheduledEvent(url, serviceToken, workspaceId, id);

interface Run {
  id: number;
  runner: string;
  status: string;
  started_at: Date;
  finished_at: Date | null;
  trigger_event_id: string;
}

async function runs(): Promise<Run[]> {
  const { rows } = await database.db.query<Run>(
    'SELECT id, runner, status, started_at, finished_at, trigger_event_id FROM poll_runs WHERE workspace_id = $1 ORDER BY id',
    [workspaceId],
  );
  return rows;
}

describe.runIf(backend === 'postgres')('two core processes on one PostgreSQL', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    simulator = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'cluster-token' }, fleet }], faults, timeoutMs: 120_000 });
    workspaceId = (await createWorkspace(database.db, { name: 'Cluster depot', policy: { ...defaultPolicy, pollIntervalSeconds: 10 } })).id;
    connection = await connectSimulator(database.db, secretKey, workspaceId, {
      provider: 'samsara',
      baseUrl: simulator.url,
      credentials: { apiToken: 'cluster-token' },
      externalIds: fleet.vehicles.map((v) => v.samsaraId),
    });
    await Promise.all([startCore('a'), startCore('b')]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(cores.map((core) => core.process.stop('SIGKILL')));
    await simulator?.stop();
    await database?.drop();
  });

  it('polls a due workspace once, whichever process takes the event', async () => {
    const id = randomUUID();
    const answers = await Promise.all(cores.map((core) => postEvent(core.url, id)));
    expect(answers.filter((a) => !a.duplicate)).toHaveLength(1);
    expect(answers.filter((a) => a.duplicate)).toHaveLength(1);
    const done = await until('the poll to finish', async () => {
      const all = await runs();
      return all.length > 0 && all.every((r) => r.status !== 'running') ? all : undefined;
    }, 30_000);
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ status: 'succeeded', trigger_event_id: id });

    // Many events at both processes: the runs never overlap in time.
    for (let i = 0; i < 6; i += 1) await Promise.all(cores.map((core) => postEvent(core.url, randomUUID())));
    const settled = await until('the polls to settle', async () => {
      const all = await runs();
      const idle = all.every((r) => r.status !== 'running');
      const { rows } = await database.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${database.jobSchema}.job WHERE name = 'workspace-poll' AND state IN ('created', 'retry', 'active')`,
      );
      return idle && rows[0]!.n === 0 ? all : undefined;
    }, 60_000);
    const sorted = [...settled].sort((x, y) => x.started_at.getTime() - y.started_at.getTime());
    for (let i = 1; i < sorted.length; i += 1) {
      expect(sorted[i]!.started_at.getTime(), `run ${sorted[i]!.id} started before run ${sorted[i - 1]!.id} ended`).toBeGreaterThanOrEqual(sorted[i - 1]!.finished_at!.getTime());
    }
    await expectStoreMatchesGroundTruth(database.db, workspaceId, connection, simulator.groundTruth, 'cluster-token');
  }, 120_000);

  it('hands the poll of a killed process to the other within 60 s, losing nothing', async () => {
    // The next provider request hangs: the poll that makes it is in flight when its process is killed.
    faults.queue('timeout', 1);
    const before = (await runs()).length;
    await postEvent(cores[0]!.url, randomUUID());
    const stuck = await until('a poll to start', async () => (await runs()).slice(before).find((r) => r.status === 'running'), 20_000);
    const pid = Number(stuck.runner.split(':').pop());
    const holder = cores.find((core) => core.process.child.pid === pid);
    expect(holder, `runner ${stuck.runner} is one of ours`).toBeDefined();
    const survivor = cores.find((core) => core !== holder)!;
    await until('the hanging request', async () => (faults.injected.timeout > 0 ? true : undefined), 10_000);

    const killedAt = Date.now();
    await holder!.process.stop('SIGKILL');
    const takeover = await until(
      'the other process to take the poll over',
      async () => (await runs()).find((r) => r.id > stuck.id && r.status === 'succeeded' && r.runner !== stuck.runner),
      70_000,
    );
    const seconds = (takeover.finished_at!.getTime() - killedAt) / 1000;
    expect(seconds).toBeLessThan(60);
    expect(Number(takeover.runner.split(':').pop())).toBe(survivor.process.child.pid);
    await expectStoreMatchesGroundTruth(database.db, workspaceId, connection, simulator.groundTruth, 'cluster-token');
  }, 120_000);
});
