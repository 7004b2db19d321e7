/**
 * Backfill end to end against the simulators, on an injected clock: a device bound after its connection's feed
 * moved past its readings shows them (backfilled, through the one ingest handler) after the worker's first pass,
 * for Samsara (`/fleet/vehicles/stats/history`, developers.samsara.com "Historical Report"), Geotab (`GetFeed`
 * from `search.fromDate`, MyGeotab SDK "Data feed") and Traccar (`/api/reports/route`, traccar/traccar
 * api/resource/ReportResource); the same request twice is one job and stores each reading once; a worker that dies
 * mid-job is taken over by another, which resumes from the last committed page; a 429 is waited out; a provider
 * without a history path is refused (request) or recorded `unsupported` (bind); periods out of bounds are refused.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBackfillRunner, defaultBackfillRunnerOptions, type BackfillRunnerOptions } from '../../src/core/backfill/backfill-runner.ts';
import { createIngestGate } from '../../src/core/ingest/ingest-gate.ts';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createVehicle } from '../../src/core/registry/vehicles.ts';
import { createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { createLogger } from '../../src/logging.ts';
import { createGeotabPollAdapter } from '../../src/providers/geotab/adapter.ts';
import { createGeotabHistoryAdapter } from '../../src/providers/geotab/history.ts';
import type { HistoryAdapter } from '../../src/providers/history-adapter.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { createSamsaraPollAdapter } from '../../src/providers/samsara/adapter.ts';
import { createSamsaraHistoryAdapter } from '../../src/providers/samsara/history.ts';
import { createTraccarHistoryAdapter } from '../../src/providers/traccar/history.ts';
import { FaultInjector } from '../../src/sim/faults.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { startGeotabSimulator, type GeotabSimulator } from '../../src/sim/geotab/simulator.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { simulatedEvAttributes } from '../../src/sim/traccar/simulator-frames.ts';
import { startTraccarSimulator, type RunningTraccarSimulator } from '../../src/sim/traccar/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { countRows, historyOf, snapshotOf } from '../support/fleet.ts';
import { expectStoreMatchesGroundTruth } from '../support/simulated.ts';
import { storedReadings } from '../support/stored-readings.ts';

const quiet = createLogger({ level: 'warn', name: 'backfill-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
// The simulators and the worker share this clock; it starts in the past, so what they produce is never ahead of the
// database's clock, which stamps a binding (and so the end of its backfill).
let clock = Date.now() - 10 * 60_000;
const now = () => clock;
/** The worker's waits, recorded and passed on the clock instead of slept. */
const waits: number[] = [];
const sleep = async (ms: number) => {
  waits.push(ms);
  clock += ms;
};

const accounts = ['accept', 'idem', 'crash', 'limit', 'geotab', 'traccar'] as const;
const fleets = new Map(accounts.map((name, i) => [name, new FleetModel({ seed: 700 + i, vehicles: 3, startMs: clock - 90 * 60_000, timeScale: 5 })]));
const samsaraFaults = new FaultInjector();
let core: TestCore;
let samsara: RunningSimulator;
let geotab: GeotabSimulator;
let traccar: RunningTraccarSimulator;

const adapters = new Map<string, HistoryAdapter>([
  ['samsara', createSamsaraHistoryAdapter({ timeoutMs: 2000 }) as unknown as HistoryAdapter],
  ['geotab', createGeotabHistoryAdapter({ timeoutMs: 2000, now, sleep }) as unknown as HistoryAdapter],
  ['traccar', createTraccarHistoryAdapter({ timeoutMs: 2000 }) as unknown as HistoryAdapter],
]);

function worker(options: Partial<BackfillRunnerOptions> = {}, historyAdapters: ReadonlyMap<string, HistoryAdapter> = adapters) {
  return createBackfillRunner(
    { db: core.db, ingestGate: createIngestGate({ concurrency: 2, queueLimit: 8, retryAfterMs: 100 }), secretKey: core.secretKey, logger: quiet, adapters: historyAdapters },
    { now, sleep, random: () => 0.5, intervalMs: 50, leaseMs: 60_000, pagePauseMs: 0, ...options },
  );
}

beforeAll(async () => {
  const samsaraAccounts = accounts.filter((name) => !['geotab', 'traccar'].includes(name));
  samsara = await startSamsaraSimulator({
    accounts: samsaraAccounts.map((name) => ({ credentials: { apiToken: `sam-${name}` }, fleet: fleets.get(name)! })),
    now,
    pageSize: 5000,
    faults: samsaraFaults,
  });
  geotab = await startGeotabSimulator({ accounts: [{ credentials: { database: 'depot', userName: 'ops', password: 'pw' }, fleet: fleets.get('geotab')! }], now });
  traccar = await startTraccarSimulator({ accounts: [{ credentials: { token: 'trc' }, fleet: fleets.get('traccar')! }], now, tickMs: 3_600_000, evAttributesMapped: true });
  core = await startTestCore({
    polling: {
      adapters: new Map([
        ['samsara', createSamsaraPollAdapter({ timeoutMs: 2000 }) as unknown as PollAdapter],
        ['geotab', createGeotabPollAdapter({ timeoutMs: 2000, now }) as unknown as PollAdapter],
      ]),
    },
  });
});
afterAll(async () => {
  await core?.close();
  await samsara?.stop();
  await geotab?.stop();
  await traccar?.stop();
});

async function depot(name: string): Promise<string> {
  return (await createWorkspace(core.db, { name, policy: { ...defaultPolicy, pollIntervalSeconds: 60 } })).id;
}

async function samsaraConnection(ws: string, account: string): Promise<string> {
  return (await createConnection(core.db, core.secretKey, ws, { provider: 'samsara', transport: 'poll', baseUrl: samsara.url, credentials: { apiToken: `sam-${account}` } })).id;
}

const jobsOf = async (ws: string) => (await core.http.admin('GET', `/v1/workspaces/${ws}/backfills`)).body.items as { id: string; status: string; trigger: string; progress: Record<string, number>; attempts: number; devices: string[] | null }[];

/** Binds one device through the API, as an operator does; answers the vehicle id and when the binding was made. */
async function bindOverApi(ws: string, connectionId: string, externalId: string): Promise<string> {
  const answer = await core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, { name: `Bound ${externalId}`, devices: [{ connectionId, externalId }] });
  expect(answer.status).toBe(201);
  return answer.body.id as string;
}

/** The acceptance check: the bound device's history holds readings from before `before`, and exactly what was served. */
async function expectBackfilled(ws: string, connectionId: string, externalId: string, vehicleId: string, groundTruth: RunningSimulator['groundTruth'], account: string, before: number) {
  const history = await historyOf(core.db, vehicleId);
  const earlier = history.filter((reading) => Date.parse(reading.observedAt) < before);
  expect(earlier.length).toBeGreaterThan(0);
  expect(Object.keys(await snapshotOf(core.db, vehicleId)).length).toBeGreaterThan(0);
  const { served } = await expectStoreMatchesGroundTruth(core.db, ws, { connectionId, vehicles: new Map([[externalId, vehicleId]]) }, groundTruth, account);
  expect(served).toBe(history.length);
}

describe('a device bound after its feed moved on is backfilled', () => {
  it('Samsara: from /fleet/vehicles/stats/history, by the worker on its first pass (well within one poll interval)', async () => {
    const ws = await depot('Samsara onboarding');
    const connectionId = await samsaraConnection(ws, 'accept');
    const device = fleets.get('accept')!.vehicles[1]!.samsaraId;
    // The documented onboarding: the feed runs (the device is still unbound, so its readings are unknown_device) ...
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'before-bind' });
    const cursorAt = clock;
    const { rows } = await core.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ingest_rejections WHERE workspace_id = $1 AND reason = 'unknown_device'`, [ws]);
    expect(rows[0]!.n).toBeGreaterThan(0);
    samsara.groundTruth.clear();
    clock += 30_000;
    // ... then the operator binds it: the feed's cursor is past its readings, and the binding enqueues a backfill.
    const vehicleId = await bindOverApi(ws, connectionId, device);
    const [queued] = await jobsOf(ws);
    expect(queued).toMatchObject({ trigger: 'bind', status: 'queued', devices: [device] });

    const runner = worker();
    runner.start();
    try {
      await vi.waitFor(async () => expect((await jobsOf(ws))[0]!.status).toBe('succeeded'), { timeout: 15_000, interval: 50 });
    } finally {
      await runner.stop();
    }
    // The worker's cadence is what bounds "within one poll interval": it is below the shortest interval a policy allows.
    expect(defaultBackfillRunnerOptions.intervalMs).toBeLessThan(10_000);
    const [done] = await jobsOf(ws);
    expect(done!.progress.windowsDone).toBe(done!.progress.windowsTotal);
    expect(done!.progress.readingsAccepted).toBeGreaterThan(0);
    await expectBackfilled(ws, connectionId, device, vehicleId, samsara.groundTruth, 'sam-accept', cursorAt);
  });

  it('Geotab: from GetFeed started at the window’s date', async () => {
    const ws = await depot('Geotab onboarding');
    const connection = await createConnection(core.db, core.secretKey, ws, { provider: 'geotab', transport: 'poll', baseUrl: geotab.url, credentials: { database: 'depot', userName: 'ops', password: 'pw' } });
    const device = fleets.get('geotab')!.vehicles[0]!.geotabId;
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'before-bind' });
    const cursorAt = clock;
    geotab.groundTruth.clear();
    clock += 30_000;
    const vehicleId = await bindOverApi(ws, connection.id, device);
    expect(await worker().runOnce()).toBe(true);
    const [job] = await jobsOf(ws);
    expect(job).toMatchObject({ status: 'succeeded', trigger: 'bind' });
    await expectBackfilled(ws, connection.id, device, vehicleId, geotab.groundTruth, 'depot', cursorAt);
  });

  it('Traccar: from the route report of the positions the server kept', async () => {
    const ws = await depot('Traccar onboarding');
    const connection = await createConnection(core.db, core.secretKey, ws, { provider: 'traccar', transport: 'stream', baseUrl: traccar.url, credentials: { token: 'trc' }, options: simulatedEvAttributes });
    const vehicle = fleets.get('traccar')!.vehicles[2]!;
    // The server records positions while nobody in the workspace has bound the device.
    for (let i = 0; i < 5; i += 1) {
      clock += 60_000;
      traccar.tick();
    }
    const boundAt = clock;
    const vehicleId = await bindOverApi(ws, connection.id, vehicle.traccarUniqueId);
    expect(await worker().runOnce()).toBe(true);
    const [job] = await jobsOf(ws);
    expect(job).toMatchObject({ status: 'succeeded', trigger: 'bind' });
    expect(job!.progress.readingsFetched).toBeGreaterThan(0);
    await expectBackfilled(ws, connection.id, vehicle.traccarUniqueId, vehicleId, traccar.groundTruth, 'trc', boundAt + 1);
  });
});

describe('backfill jobs', () => {
  it('are idempotent: the same request twice is one job, and its readings are stored once', async () => {
    const ws = await depot('Idempotent depot');
    const connectionId = await samsaraConnection(ws, 'idem');
    const device = fleets.get('idem')!.vehicles[0]!.samsaraId;
    const vehicleId = await createVehicle(core.db, ws, { name: 'Idem', devices: [{ connectionId, externalId: device }] }, { backfillLookbackMs: 0 });
    expect(await jobsOf(ws)).toEqual([]);
    const body = { from: new Date(clock - 100 * 60_000).toISOString(), to: new Date(clock).toISOString(), devices: [device] };
    const first = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, body);
    const second = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(first.body.progress.windowsTotal).toBe(2);
    const runner = worker();
    expect(await runner.runOnce()).toBe(true);
    expect(await runner.runOnce()).toBe(false);
    const stored = await historyOf(core.db, vehicleId);
    expect(stored.length).toBeGreaterThan(0);
    // Asked again once done: the same job answers; nothing is fetched twice.
    const third = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, body);
    expect(third.body).toMatchObject({ id: first.body.id, status: 'succeeded' });
    expect(await runner.runOnce()).toBe(false);
    expect(await historyOf(core.db, vehicleId)).toHaveLength(stored.length);
    expect((await jobsOf(ws)).length).toBe(1);
    const one = await core.http.admin('GET', `/v1/workspaces/${ws}/backfills/${first.body.id}`);
    expect(one.body.progress.readingsAccepted).toBe(stored.length);
  });

  it('resume after a worker dies mid-job: another takes the lapsed lease and goes on from the last committed window', async () => {
    const ws = await depot('Crash depot');
    const connectionId = await samsaraConnection(ws, 'crash');
    const device = fleets.get('crash')!.vehicles[2]!.samsaraId;
    const vehicleId = await createVehicle(core.db, ws, { name: 'Crash', devices: [{ connectionId, externalId: device }] }, { backfillLookbackMs: 0 });
    samsara.groundTruth.clear();
    const answer = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, { from: new Date(clock - 100 * 60_000).toISOString(), to: new Date(clock).toISOString() });
    expect(answer.body.devices).toBeNull();

    // The first worker reads window 1, then hangs in window 2 as a process does that stopped answering.
    const samsaraHistory = adapters.get('samsara')!;
    let windows = 0;
    const hanging: HistoryAdapter = {
      ...samsaraHistory,
      fetchHistory: (context, query) => {
        windows += 1;
        if (windows === 1) return samsaraHistory.fetchHistory(context, query);
        return (async function* () {
          await new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
          yield* [];
        })();
      },
    };
    const dying = worker({ leaseMs: 5000, holder: 'dying' }, new Map([['samsara', hanging]]));
    const dyingRun = dying.runOnce();
    await vi.waitFor(async () => expect((await jobsOf(ws))[0]!.progress.windowsDone).toBe(1), { timeout: 10_000, interval: 20 });
    const afterFirst = (await storedReadings(core.db, ws, connectionId)).length;
    expect(afterFirst).toBeGreaterThan(0);

    const queries: string[] = [];
    const observed: HistoryAdapter = { ...samsaraHistory, fetchHistory: (context, query) => (queries.push(query.from), samsaraHistory.fetchHistory(context, query)) };
    const taker = worker({ leaseMs: 5000, holder: 'taker' }, new Map([['samsara', observed]]));
    // Not before the lease lapses ...
    expect(await taker.runOnce()).toBe(false);
    clock += 6000;
    // ... then it resumes at window 2.
    expect(await taker.runOnce()).toBe(true);
    expect(queries).toEqual([new Date(Date.parse(answer.body.from) + Math.ceil((Date.parse(answer.body.to) - Date.parse(answer.body.from) + 1) / 2)).toISOString()]);
    await dying.stop();
    await dyingRun;
    const [job] = await jobsOf(ws);
    expect(job).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(job!.progress.windowsDone).toBe(2);
    // Nothing lost, nothing twice: the store is exactly what both workers were served, once each.
    await expectStoreMatchesGroundTruth(core.db, ws, { connectionId, vehicles: new Map([[device, vehicleId]]) }, samsara.groundTruth, 'sam-crash');
  });

  it('wait out a 429: a short Retry-After within the job, a long one back in the queue until then', async () => {
    const ws = await depot('Limited depot');
    const connectionId = await samsaraConnection(ws, 'limit');
    const device = fleets.get('limit')!.vehicles[0]!.samsaraId;
    await createVehicle(core.db, ws, { name: 'Limited', devices: [{ connectionId, externalId: device }] }, { backfillLookbackMs: 0 });
    const body = { from: new Date(clock - 30 * 60_000).toISOString(), to: new Date(clock).toISOString() };
    const first = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, body);
    waits.length = 0;
    samsaraFaults.queue('rate_limit');
    expect(await worker().runOnce()).toBe(true);
    // The simulator's 429 says Retry-After: 0.375 (fractional, as Samsara sends it).
    expect(waits).toContain(375);
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}/backfills/${first.body.id}`)).body).toMatchObject({ status: 'succeeded' });

    const second = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, { ...body, to: new Date(clock - 60_000).toISOString() });
    expect(second.body.id).not.toBe(first.body.id);
    samsaraFaults.queue('rate_limit');
    const impatient = worker({ maxInlineRetryAfterMs: 100 });
    expect(await impatient.runOnce()).toBe(true);
    const waiting = (await core.http.admin('GET', `/v1/workspaces/${ws}/backfills/${second.body.id}`)).body;
    expect(waiting).toMatchObject({ status: 'queued', lastErrorClass: 'rate_limited' });
    expect(Date.parse(waiting.notBefore)).toBe(clock + 375);
    expect(await impatient.runOnce()).toBe(false);
    clock += 400;
    expect(await impatient.runOnce()).toBe(true);
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}/backfills/${second.body.id}`)).body).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('fail with the class when the provider refuses the credentials; the same request then makes a new job', async () => {
    const ws = await depot('Refused depot');
    const connectionId = await samsaraConnection(ws, 'limit');
    await createVehicle(core.db, ws, { name: 'Refused', devices: [{ connectionId, externalId: fleets.get('limit')!.vehicles[1]!.samsaraId }] }, { backfillLookbackMs: 0 });
    const body = { from: new Date(clock - 20 * 60_000).toISOString(), to: new Date(clock).toISOString() };
    const first = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, body);
    samsaraFaults.queue('auth');
    expect(await worker().runOnce()).toBe(true);
    const failed = (await core.http.admin('GET', `/v1/workspaces/${ws}/backfills/${first.body.id}`)).body;
    expect(failed).toMatchObject({ status: 'failed', lastErrorClass: 'auth', attempts: 1 });
    expect(failed.finishedAt).not.toBeNull();
    const again = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connectionId}/backfill`, body);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ status: 'queued' });
    expect(again.body.id).not.toBe(first.body.id);
    expect(await worker().runOnce()).toBe(true);
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}/backfills/${again.body.id}`)).body.status).toBe('succeeded');
  });

  it('a provider without a history path: a request is refused, a binding records the job as unsupported', async () => {
    const ws = await depot('Stream-only depot');
    const connection = await createConnection(core.db, core.secretKey, ws, { provider: 'tessie', transport: 'stream', credentials: { accessToken: 'tessie-token' } });
    const refused = await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connection.id}/backfill`, { from: new Date(clock - 3600_000).toISOString() });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('backfill_unsupported');
    await bindOverApi(ws, connection.id, '5YJ3E1EA7KF000001');
    const [job] = await jobsOf(ws);
    expect(job).toMatchObject({ status: 'unsupported', trigger: 'bind' });
    expect((job as unknown as { lastErrorClass: string | null }).lastErrorClass).toBeNull();
    expect(await worker().runOnce()).toBe(false);
  });

  it('periods out of bounds get clear problems', async () => {
    const ws = await depot('Bounds depot');
    const connection = await createConnection(core.db, core.secretKey, ws, { provider: 'traccar', transport: 'stream', baseUrl: traccar.url, credentials: { token: 'trc' }, options: { historyDays: 2 } });
    const ask = (body: unknown) => core.http.admin('POST', `/v1/workspaces/${ws}/connections/${connection.id}/backfill`, body);
    const at = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3600_000).toISOString();
    expect((await ask({ from: at(1), to: at(2) })).body.code).toBe('invalid_backfill_range');
    expect((await ask({ from: at(-2) })).body.code).toBe('invalid_backfill_range');
    expect((await ask({ from: at(49) })).body.code).toBe('backfill_beyond_provider_history');
    const samsaraId = await samsaraConnection(ws, 'idem');
    expect((await core.http.admin('POST', `/v1/workspaces/${ws}/connections/${samsaraId}/backfill`, { from: at(32 * 24) })).body.code).toBe('backfill_range_too_long');
    expect((await ask({ from: at(1), devices: ['not-bound'] })).body.code).toBe('device_not_bound');
    expect((await ask({ from: 'yesterday' })).status).toBe(400);
    expect(await countRows(core.db, 'backfill_jobs')).toBeGreaterThan(0);
    expect((await jobsOf(ws)).length).toBe(0);
  });
});

describe('the Traccar history path', () => {
  it('reads on from the last fix time when an answer holds report.maxPositions positions', async () => {
    const fleet = new FleetModel({ seed: 777, vehicles: 4, startMs: clock - 30 * 60_000, timeScale: 5 });
    const server = await startTraccarSimulator({ accounts: [{ credentials: { token: 'capped' }, fleet }], now, tickMs: 3_600_000, reportMaxPositions: 3 });
    try {
      const from = new Date(clock).toISOString();
      for (let i = 0; i < 8; i += 1) {
        clock += 30_000;
        server.tick();
      }
      const devices = fleet.vehicles.map((vehicle) => vehicle.traccarUniqueId);
      const pages = [];
      const adapter = createTraccarHistoryAdapter({ timeoutMs: 2000 });
      const context = { baseUrl: server.url, credentials: { token: 'capped' }, options: { attributes: {}, reportMaxPositions: 3 }, signal: new AbortController().signal, session: new Map() };
      for await (const page of adapter.fetchHistory(context, { devices, from, to: new Date(clock).toISOString(), cursor: null })) pages.push(page);
      // Three positions an answer: a device with more is read on from the fix time its last answer ended on.
      expect(pages.length).toBeGreaterThan(devices.length);
      expect(pages.map((page) => page.final)).toEqual([...pages.slice(1).map(() => false), true]);
      const key = (device: string, at: string) => `${device}|${at}`;
      const fixes = new Set(pages.flatMap((page) => page.devices.flatMap((d) => d.readings.filter((r) => r.signal === 'location').map((r) => key(d.externalDeviceId, r.observedAt)))));
      const served = new Set(server.groundTruth.all('capped').filter((r) => r.signal === 'location').map((r) => key(r.externalDeviceId, new Date(r.observedAtMs).toISOString())));
      expect(fixes).toEqual(served);
      expect(fixes.size).toBeGreaterThan(3);
    } finally {
      await server.stop();
    }
  });
});
