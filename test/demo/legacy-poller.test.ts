/**
 * The demo's legacy poller (src/demo/legacy-poller.ts) against a test core in `legacy` cutover and the Samsara
 * simulator, over real HTTP on loopback. The simulator and the poller share a clock the test moves (20 minutes
 * behind the wall, so no reading is ever ahead of core's clock); the simulator's ground truth says what was served.
 * What lands in history is exactly what was served, as `legacy_poll`, with the unit error on exactly the chosen
 * devices; a lag holds back what is newer than it and posts it later; a core that answers 503 or is down costs re-reads
 * from the same cursor and nothing else. And `fleetwire legacy-poller` as a process: it runs, stops on SIGTERM, and
 * says a usage mistake with the usage.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace } from '../../src/core/registry/workspaces.ts';
import { startLegacyPoller, type LegacyPoller, type LegacyPollerOptions } from '../../src/demo/legacy-poller.ts';
import { createLogger } from '../../src/logging.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { servedKey, type ServedReading } from '../../src/sim/ground-truth.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { runFleetwire, startFleetwire } from '../support/processes.ts';
import { connectSimulator, type SimulatedConnection } from '../support/simulated.ts';
import { sameServedValue } from '../support/stored-readings.ts';
import { until } from '../support/stream.ts';
import { startSwitchableProxy } from '../support/switchable-proxy.ts';

/** What the legacy poller's own mapping reads; the simulator serves heading and speed besides. */
const legacySignals = new Set(['soc_pct', 'odometer_km', 'location', 'charging_state']);
const milesAsKm = 0.621371;
const accounts = ['units', 'lag', 'full', 'outage', 'cli'] as const;
type Account = (typeof accounts)[number];
const token = (account: Account) => `legacy-${account}-samsara-token`;

let clock = Date.now() - 20 * 60_000;
const now = () => clock;
const fleets = new Map(accounts.map((name, i) => [name, new FleetModel({ seed: 700 + i, vehicles: 6, startMs: clock, timeScale: 5 })]));
let core: TestCore;
let samsara: RunningSimulator;
const logs: string[] = [];
const logger = createLogger({ level: 'debug', name: 'legacy-poller-test', destination: new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) }) });
const started: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  core = await startTestCore();
  samsara = await startSamsaraSimulator({ accounts: accounts.map((name) => ({ credentials: { apiToken: token(name) }, fleet: fleets.get(name)! })), now, pageSize: 50 });
});
afterEach(async () => {
  for (const stop of started.splice(0).reverse()) await stop();
});
afterAll(async () => {
  await core?.close();
  await samsara?.stop();
  // The tokens never reach a log line, whatever happened.
  expect(logs.join('')).not.toMatch(/legacy-\w+-samsara-token|fws_test_/);
});

const externalIds = (account: Account) => fleets.get(account)!.vehicles.map((v) => v.samsaraId);

/** A workspace in legacy cutover with a Samsara poll connection to the account, every vehicle bound. */
async function yard(account: Account): Promise<{ workspaceId: string; connection: SimulatedConnection }> {
  const workspace = await createWorkspace(core.db, { name: `Yard ${account}`, cutover: 'legacy' });
  const connection = await connectSimulator(core.db, core.secretKey, workspace.id, { provider: 'samsara', baseUrl: samsara.url, credentials: { apiToken: token(account) }, externalIds: externalIds(account) });
  return { workspaceId: workspace.id, connection };
}

function poll(account: Account, target: { workspaceId: string; connection: SimulatedConnection }, extra: Partial<LegacyPollerOptions> = {}): LegacyPoller {
  const poller = startLegacyPoller({
    coreUrl: core.url,
    serviceToken: core.serviceToken,
    workspaceId: target.workspaceId,
    connectionId: target.connection.connectionId,
    samsaraUrl: samsara.url,
    apiToken: token(account),
    intervalMs: 50,
    logger,
    now,
    ...extra,
  });
  started.push(() => poller.stop());
  return poller;
}

/** Waits for `n` more polls to finish: with n >= 2, at least one began after the call. */
async function polls(poller: LegacyPoller, n: number): Promise<void> {
  const target = poller.stats.polls + n;
  await until(`${n} more polls`, () => poller.stats.polls >= target || undefined);
}

/** What the simulator served the account, once per reading, of the signals the legacy poller maps. */
function served(account: Account): Map<string, ServedReading> {
  return new Map([...samsara.groundTruth.unique(token(account))].filter(([, r]) => legacySignals.has(r.signal)));
}

/** How often each reading was served (a re-read from an unmoved cursor serves it again). */
function servings(account: Account): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of samsara.groundTruth.all(token(account))) if (legacySignals.has(r.signal)) counts.set(servedKey(r), (counts.get(servedKey(r)) ?? 0) + 1);
  return counts;
}

/** The connection's history rows, keyed like ground truth, with the source they came by. */
async function history(target: { workspaceId: string; connection: SimulatedConnection }) {
  const { rows } = await core.db.query<{ external_id: string; signal: string; observed_ms: number; value: unknown; source: string }>(
    `SELECT d.external_id, h.signal, (extract(epoch FROM h.observed_at) * 1000)::float8 AS observed_ms, h.value, h.source
       FROM signal_history h
       JOIN device_bindings d ON d.workspace_id = h.workspace_id AND d.vehicle_id = h.vehicle_id AND d.connection_id = h.connection_id
      WHERE h.workspace_id = $1 AND h.connection_id = $2`,
    [target.workspaceId, target.connection.connectionId],
  );
  const readings = rows.map((r) => ({ externalDeviceId: r.external_id, signal: r.signal as ServedReading['signal'], observedAtMs: Math.round(r.observed_ms), value: r.value, source: r.source }));
  return new Map(readings.map((r) => [servedKey(r), r]));
}

/** Every served reading is stored and nothing else; the store's value is `expected` of the served one. */
async function expectHistoryOf(account: Account, target: { workspaceId: string; connection: SimulatedConnection }, expected = (r: ServedReading) => r.value) {
  const want = served(account);
  const stored = await history(target);
  expect([...want.keys()].filter((key) => !stored.has(key)).slice(0, 5), 'served but not stored').toEqual([]);
  expect([...stored.keys()].filter((key) => !want.has(key)).slice(0, 5), 'stored but never served').toEqual([]);
  expect([...stored.values()].filter((r) => r.source !== 'legacy_poll')).toEqual([]);
  const wrong = [...want].filter(([key, r]) => !sameServedValue(stored.get(key)!.value, expected(r)));
  expect(wrong.slice(0, 3).map(([key, r]) => [key, r.value, stored.get(key)!.value])).toEqual([]);
  return { want, stored };
}

describe('the legacy poller', () => {
  it('posts what it reads as legacy_poll updates, with the unit error on exactly the chosen devices', async () => {
    const target = await yard('units');
    const chosen = externalIds('units').slice(0, 2);
    const poller = poll('units', target, { defect: { unitError: { signal: 'odometer_km', factor: milesAsKm, externalIds: chosen } } });
    await polls(poller, 2);
    clock += 5 * 60_000;
    await polls(poller, 2);

    const inMiles = (r: ServedReading) => r.signal === 'odometer_km' && chosen.includes(r.externalDeviceId);
    const { want } = await expectHistoryOf('units', target, (r) => (inMiles(r) ? (r.value as number) * milesAsKm : r.value));
    const odometers = [...want.values()].filter((r) => r.signal === 'odometer_km');
    expect(new Set(odometers.filter(inMiles).map((r) => r.externalDeviceId))).toEqual(new Set(chosen));
    expect(odometers.filter((r) => !inMiles(r)).length).toBeGreaterThan(0);
    expect(poller.stats).toMatchObject({ failedPolls: 0, updatesRejected: 0, held: 0 });

    // As the read API shows it: the chosen vehicle's odometer, in miles, came by the legacy poller.
    const vehicleId = target.connection.vehicles.get(chosen[0]!)!;
    const api = await core.http.admin('GET', `/v1/workspaces/${target.workspaceId}/vehicles/${vehicleId}/history?signal=odometer_km&limit=10000`);
    const first = odometers.filter((r) => r.externalDeviceId === chosen[0]).sort((a, b) => a.observedAtMs - b.observedAtMs)[0]!;
    expect(api.body.items[0]).toMatchObject({ source: 'legacy_poll', provider: 'samsara', observedAt: new Date(first.observedAtMs).toISOString() });
    expect(api.body.items[0].value).toBeCloseTo((first.value as number) * milesAsKm, 3);
  });

  it('with a lag, posts nothing newer than the lag, and the readings it held back once they are old enough', async () => {
    const target = await yard('lag');
    const lagMs = 90_000;
    const poller = poll('lag', target, { defect: { lagMs } });
    await polls(poller, 2);
    clock += 5 * 60_000;
    await polls(poller, 2);

    const cutoff = clock - lagMs;
    const newer = [...served('lag').values()].filter((r) => r.observedAtMs > cutoff);
    expect(newer.length).toBeGreaterThan(0);
    const stored = await history(target);
    expect([...stored.values()].filter((r) => r.observedAtMs > cutoff)).toEqual([]);
    expect([...served('lag')].filter(([key, r]) => r.observedAtMs <= cutoff && !stored.has(key))).toEqual([]);
    expect(poller.stats.held).toBe(newer.length);

    // The lag passes: what was held lands now, and what the simulator served since is held in its turn.
    clock += lagMs;
    await polls(poller, 2);
    const later = await history(target);
    for (const r of newer) expect(later.has(servedKey(r)), servedKey(r)).toBe(true);
    expect([...later.values()].filter((r) => r.observedAtMs > clock - lagMs)).toEqual([]);
    expect(poller.stats).toMatchObject({ failedPolls: 0, droppedReadings: 0 });
  });

  it('drops the oldest readings past the lag buffer’s cap, and counts them', async () => {
    const target = await yard('full');
    const poller = poll('full', target, { defect: { lagMs: 3600_000 }, maxHeldReadings: 25 });
    await polls(poller, 2);
    clock += 2 * 60_000;
    await polls(poller, 2);
    expect(served('full').size).toBeGreaterThan(25);
    expect(poller.stats).toMatchObject({ held: 25, droppedReadings: served('full').size - 25 });
    expect((await history(target)).size).toBe(0);
    expect(logs.join('')).toMatch(/the lag buffer is full/);
  });

  it('keeps its cursor while core answers 503 or is down, and loses nothing', async () => {
    const target = await yard('outage');
    const front = await startUnavailableFront(core.url);
    const proxy = await startSwitchableProxy(front.port);
    started.push(() => front.close(), () => proxy.close());
    const poller = poll('outage', target, { coreUrl: proxy.url, timeoutMs: 2000 });
    await polls(poller, 2);
    await expectHistoryOf('outage', target);
    const before = (await history(target)).size;

    front.unavailable = true;
    clock += 2 * 60_000;
    await polls(poller, 3);
    await proxy.down();
    clock += 60_000;
    await polls(poller, 4);
    expect((await history(target)).size).toBe(before);
    expect(poller.stats.failedPolls).toBeGreaterThanOrEqual(6);
    // Every poll read the outage's readings again, from the cursor it had before: it never moved on.
    const outage = [...served('outage').values()].filter((r) => r.observedAtMs > clock - 3 * 60_000);
    expect(outage.length).toBeGreaterThan(0);
    const counts = servings('outage');
    expect(outage.filter((r) => counts.get(servedKey(r))! < 3)).toEqual([]);

    await proxy.up();
    front.unavailable = false;
    await polls(poller, 2);
    await expectHistoryOf('outage', target);
    // Accepted: the cursor has moved on, and the next polls read none of it again.
    const settled = servings('outage');
    await polls(poller, 3);
    expect(servings('outage')).toEqual(settled);
  });
});

/** Core behind a switch: `unavailable`, every request is answered 503 as core at capacity answers it. */
async function startUnavailableFront(target: string): Promise<{ port: number; unavailable: boolean; close(): Promise<void> }> {
  const state = { unavailable: false };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (state.unavailable) {
        response.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
        response.end(JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'overloaded', detail: 'at capacity' }));
        return;
      }
      const headers = { authorization: request.headers.authorization ?? '', 'content-type': request.headers['content-type'] ?? 'application/json' };
      fetch(`${target}${request.url}`, { method: request.method, headers, body: chunks.length > 0 ? Buffer.concat(chunks) : undefined })
        .then(async (answer) => {
          response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          response.end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch(() => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return Object.assign(state, {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe('fleetwire legacy-poller', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-legacy-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const base = () => ({ FLEETWIRE_DATA_DIR: dataDir, FLEETWIRE_LOG_LEVEL: 'warn' });

  it('polls into core until SIGTERM, then stops cleanly', async () => {
    const target = await yard('cli');
    const args = ['legacy-poller', '--core-url', core.url, '--workspace', target.workspaceId, '--connection', target.connection.connectionId, '--samsara-url', samsara.url, '--interval', '0.2'];
    const running = startFleetwire(args, { ...base(), FLEETWIRE_SERVICE_TOKEN: core.serviceToken, FLEETWIRE_LEGACY_SAMSARA_TOKEN: token('cli') });
    started.push(() => running.stop('SIGKILL'));
    await until('the first readings in history', async () => (await history(target)).size > 0 || undefined);
    expect(await running.stop('SIGTERM')).toBe(0);
    await expectHistoryOf('cli', target);
    expect(running.output()).not.toContain(token('cli'));
  });

  it('says a usage mistake with the usage (exit 2), and a missing service token by its variable (exit 1)', async () => {
    const ws = '7d6c1c5e-2f5a-4a8e-9a51-3c6f0f2b9d11';
    const args = ['legacy-poller', '--core-url', core.url, '--workspace', ws, '--connection', ws, '--samsara-url', samsara.url];
    const env = { ...base(), FLEETWIRE_SERVICE_TOKEN: core.serviceToken };

    const noToken = await runFleetwire(args, env);
    expect(noToken.code).toBe(2);
    expect(noToken.output).toMatch(/FLEETWIRE_LEGACY_SAMSARA_TOKEN is not set[\s\S]*usage: fleetwire[\s\S]*legacy-poller --core-url <url>/);
    const onArgv = await runFleetwire([...args, '--samsara-token', token('cli')], { ...env, FLEETWIRE_LEGACY_SAMSARA_TOKEN: token('cli') });
    expect(onArgv.code).toBe(2);
    expect(onArgv.output).toMatch(/Unknown option '--samsara-token'[\s\S]*usage: fleetwire/);
    const noWorkspace = await runFleetwire(['legacy-poller', '--core-url', core.url, '--connection', ws, '--samsara-url', samsara.url], { ...env, FLEETWIRE_LEGACY_SAMSARA_TOKEN: token('cli') });
    expect(noWorkspace.code).toBe(2);
    expect(noWorkspace.output).toMatch(/missing --workspace/);
    const badFactor = await runFleetwire([...args, '--unit-error-factor', 'miles'], { ...env, FLEETWIRE_LEGACY_SAMSARA_TOKEN: token('cli') });
    expect(badFactor.code).toBe(2);
    expect(badFactor.output).toMatch(/--unit-error-factor takes a number above 0/);

    const noServiceToken = await runFleetwire(args, { ...base(), FLEETWIRE_LEGACY_SAMSARA_TOKEN: token('cli') });
    expect(noServiceToken.code).toBe(1);
    expect(noServiceToken.output).toMatch(/FLEETWIRE_SERVICE_TOKEN is not set: the legacy poller needs the service token/);
  });
});
