/**
 * The stream runtime against the Traccar and Tessie simulators over real websockets, delivering
 * to a test core over real HTTP: everything served arrives once (resends absorbed), status reaches core, a bad
 * token is refused and backed off, dropped and half-open sockets are reconnected, bad frames are skipped, core
 * down for 10 s loses nothing, and two runtimes never hold one connection twice.
 */
import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { createWorkspace } from '../../src/core/registry/workspaces.ts';
import { createLogger } from '../../src/logging.ts';
import { startTessieSimulator, type RunningTessieSimulator } from '../../src/sim/tessie/simulator.ts';
import { startTraccarSimulator, type RunningTraccarSimulator } from '../../src/sim/traccar/simulator.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import type { StreamRuntime } from '../../src/stream/runtime.ts';
import { expectStoreMatchesGroundTruth } from '../support/simulated.ts';
import {
  connectStreamProvider,
  drained,
  pastFastClock,
  readingsTakenIn,
  startTestStream,
  takenInEverything,
  until,
  useStreamTestCore,
} from '../support/stream.ts';
import { startSwitchableProxy } from '../support/switchable-proxy.ts';

const quiet = createLogger({ level: 'warn', name: 'stream-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
let clock = pastFastClock();
// Each test ends with what it started stopped and no stream connection enabled, pass or fail, so the next test's
// runtimes share out only its own connections.
const suite = useStreamTestCore();
const stops = suite.stops;

beforeEach(() => {
  clock = pastFastClock();
});

function fleet(seed: number, vehicles: number): FleetModel {
  return new FleetModel({ seed, vehicles, startMs: clock.startMs, timeScale: 5 });
}

async function traccar(token: string, model: FleetModel): Promise<RunningTraccarSimulator> {
  const sim = await startTraccarSimulator({ accounts: [{ credentials: { token }, fleet: model }], now: clock.now, tickMs: 50, keepaliveMs: 200 });
  stops.push(() => sim.stop());
  return sim;
}

async function tesla(accessToken: string, model: FleetModel, resendRate = 0): Promise<RunningTessieSimulator> {
  const sim = await startTessieSimulator({ accounts: [{ credentials: { accessToken }, fleet: model }], now: clock.now, tickMs: 50, resendRate });
  stops.push(() => sim.stop());
  return sim;
}

function stream(overrides: Parameters<typeof startTestStream>[0] extends infer O ? Partial<O> : never = {}): StreamRuntime {
  const runtime = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet, ...overrides });
  stops.push(() => runtime.stop());
  return runtime;
}

async function connectionView(workspaceId: string, connectionId: string) {
  return (await suite.core.http.admin('GET', `/v1/workspaces/${workspaceId}/connections/${connectionId}`)).body;
}

/**
 * Ends serving: the clock stops (the simulators send nothing new), the runtime takes in and delivers everything
 * already sent, then the simulators go. Comparing against ground truth is fair only after this.
 */
async function quiesce(runtime: StreamRuntime, sims: { stop(): Promise<void> }[]): Promise<void> {
  clock.freeze();
  await takenInEverything(runtime);
  for (const sim of sims) await sim.stop();
  await drained(runtime);
}

function accounted(runtime: StreamRuntime) {
  const t = runtime.pipeline.totals;
  return { readingsIn: readingsTakenIn(runtime), delivered: t.delivered, coalesced: runtime.coalescer.coalesced, dropped: t.dropped, buffered: t.buffered + runtime.coalescer.held };
}

describe('stream runtime', () => {
  it('delivers every reading the simulators served exactly once, resends absorbed, and reports connection status to core', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Stream depot' })).id;
    const traccarFleet = fleet(301, 6);
    const teslaFleet = fleet(302, 4);
    const tr = await traccar('tr-all', traccarFleet);
    const ts = await tesla('ts-all', teslaFleet, 0.3);
    const trConnection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: tr.url, token: 'tr-all', vehicles: traccarFleet.vehicles });
    const tsConnection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'tessie', baseUrl: ts.url, token: 'ts-all', vehicles: teslaFleet.vehicles });
    const runtime = stream();
    await until('readings from both providers', () => tr.groundTruth.all().length > 40 && ts.groundTruth.all().length > 40);
    await until('status at core', async () => (await connectionView(ws, tsConnection.connectionId)).streamState?.connected === true);
    const status = (await connectionView(ws, tsConnection.connectionId)).streamState;
    expect(status).toMatchObject({ holder: runtime.holder, connected: true, sockets: 4, socketsOpen: 4, badFrames: 0, dropped: 0 });
    expect(status.readingsIn).toBeGreaterThan(0);
    const vehicles = (await suite.core.http.admin('GET', `/v1/workspaces/${ws}/vehicles?limit=100`)).body.items;
    expect(vehicles.filter((v: { lastSyncedAt: string | null }) => v.lastSyncedAt !== null)).toHaveLength(10);

    await quiesce(runtime, [tr, ts]);
    await expectStoreMatchesGroundTruth(suite.core.db, ws, trConnection, tr.groundTruth, 'tr-all');
    await expectStoreMatchesGroundTruth(suite.core.db, ws, tsConnection, ts.groundTruth, 'ts-all');
    expect(ts.groundTruth.all().length).toBeGreaterThan(ts.groundTruth.unique().size);
    expect(runtime.pipeline.answered.duplicate).toBeGreaterThan(0);
    const counts = accounted(runtime);
    expect(counts.readingsIn).toBe(counts.delivered + counts.coalesced + counts.dropped + counts.buffered);
    expect(counts.dropped).toBe(0);

    // Resends never moved the snapshot backwards: each snapshot row is the newest history row of its signal.
    const { rows } = await suite.core.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM signal_snapshot s
        WHERE s.workspace_id = $1
          AND s.observed_at <> (SELECT max(observed_at) FROM signal_history h
                                 WHERE h.workspace_id = s.workspace_id AND h.vehicle_id = s.vehicle_id AND h.signal = s.signal)`,
      [ws],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('opens a connection an admin adds, re-plans when a device is bound, and closes a connection that is disabled or removed', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Changing depot' })).id;
    const model = fleet(307, 3);
    const ts = await tesla('ts-changing', model);
    const runtime = stream({ holder: 'following-runtime', refreshMs: 300 });
    const added = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'tessie', baseUrl: ts.url, token: 'ts-changing', vehicles: model.vehicles.slice(0, 2) });
    const held = () => runtime.connections.get(added.connectionId);
    const sockets = () => runtime.status(added.connectionId)?.socketsOpen ?? 0;
    await until('the new connection to be opened', () => sockets() === 2, 5000);

    const third = model.vehicles[2]!;
    const extra = await suite.core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, { name: 'Third', devices: [{ connectionId: added.connectionId, externalId: third.vin }] });
    expect(extra.status).toBe(201);
    await until('a socket for the newly bound VIN', () => sockets() === 3, 5000);

    await suite.core.http.admin('PATCH', `/v1/workspaces/${ws}/connections/${added.connectionId}`, { enabled: false });
    await until('the disabled connection to be closed', () => !held(), 5000);
    await suite.core.http.admin('PATCH', `/v1/workspaces/${ws}/connections/${added.connectionId}`, { enabled: true });
    await until('the re-enabled connection to be opened again', () => sockets() === 3, 5000);
    await suite.core.http.admin('DELETE', `/v1/workspaces/${ws}/connections/${added.connectionId}`);
    await until('the removed connection to be closed', () => !held(), 5000);
    await until('the simulator to see every socket closed', () => ts.openSockets === 0, 5000);
  });

  it('refuses a bad token, reports auth and backs off instead of hammering the provider', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Bad token depot' })).id;
    const model = fleet(303, 2);
    const tr = await traccar('tr-right', model);
    const connection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: tr.url, token: 'tr-wrong', vehicles: model.vehicles });
    stream({ holder: 'bad-token-runtime' });
    const state = await until('the auth failure to be reported', async () => {
      const view = (await connectionView(ws, connection.connectionId)).streamState;
      return view?.lastErrorClass === 'auth' ? view : undefined;
    });
    expect(state.connected).toBe(false);
    expect(state.lastError).not.toContain('tr-wrong');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const later = (await connectionView(ws, connection.connectionId)).streamState;
    // With a 1 s backoff cap taken at once for auth failures, two seconds allow a few attempts, not dozens.
    expect(later.reconnects).toBeLessThanOrEqual(5);
    expect(later.readingsIn).toBe(0);
  });

  it('reconnects after the provider drops the socket, and after a half-open socket goes quiet; counts and skips bad frames', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Flaky depot' })).id;
    const model = fleet(304, 3);
    const tr = await traccar('tr-flaky', model);
    const connection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: tr.url, token: 'tr-flaky', vehicles: model.vehicles });
    const runtime = stream();
    const held = () => runtime.connections.get(connection.connectionId);
    await until('the first readings', () => (held()?.counters.readingsIn ?? 0) > 0);

    tr.sendMalformedFrame();
    await until('the bad frame to be counted', () => (held()?.counters.badFrames ?? 0) >= 1);

    // Traccar sends the latest position of every device on each new socket: readings after a reconnect are
    // certain, whatever the fleet is doing.
    const reconnects = () => runtime.status(connection.connectionId)!.reconnects;
    const beforeDrop = held()!.counters.readingsIn;
    tr.dropSockets();
    await until('a reconnect after the drop', () => reconnects() >= 1);
    await until('readings after the reconnect', () => held()!.counters.readingsIn > beforeDrop);

    const reconnectsBefore = reconnects();
    const beforeHalfOpen = held()!.counters.readingsIn;
    tr.goHalfOpen();
    await until('the half-open socket to be found dead and replaced', () => reconnects() > reconnectsBefore);
    await until('readings after the half-open socket was replaced', () => held()!.counters.readingsIn > beforeHalfOpen);

    await quiesce(runtime, [tr]);
    await expectStoreMatchesGroundTruth(suite.core.db, ws, connection, tr.groundTruth, 'tr-flaky');
  });

  it('keeps a live socket through a stall of its own process longer than the dead-socket timeout', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Stalled depot' })).id;
    const model = fleet(307, 3);
    const tr = await traccar('tr-stall', model);
    const connection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: tr.url, token: 'tr-stall', vehicles: model.vehicles });
    const runtime = stream();
    const held = () => runtime.connections.get(connection.connectionId);
    const reconnects = () => runtime.status(connection.connectionId)!.reconnects;
    await until('the first readings', () => (held()?.counters.readingsIn ?? 0) > 0);

    // The event loop is blocked for 2.5 times the 600 ms dead-socket timeout: frames and pongs wait unread in the
    // socket meanwhile. The socket is as alive as before; only this process was away.
    const before = reconnects();
    const stalledUntil = Date.now() + 1500;
    while (Date.now() < stalledUntil) {
      // busy: nothing else runs
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(reconnects()).toBe(before);

    await quiesce(runtime, [tr]);
    await expectStoreMatchesGroundTruth(suite.core.db, ws, connection, tr.groundTruth, 'tr-stall');
  });

  it('buffers while core is down for 10 s, then delivers every reading once', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Outage depot' })).id;
    const model = fleet(305, 4);
    const ts = await tesla('ts-outage', model);
    const connection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'tessie', baseUrl: ts.url, token: 'ts-outage', vehicles: model.vehicles });
    const proxy = await startSwitchableProxy(Number(new URL(suite.core.url).port));
    stops.push(() => proxy.close());
    const runtime = stream({ coreUrl: proxy.url, holder: 'outage-runtime' });
    await until('deliveries through the proxy', () => runtime.pipeline.totals.delivered > 0);

    await proxy.down();
    const deliveredAtOutage = runtime.pipeline.totals.delivered;
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    expect(runtime.pipeline.totals.buffered).toBeGreaterThan(0);
    expect(runtime.pipeline.totals.delivered).toBe(deliveredAtOutage);
    expect(runtime.pipeline.lastError).toMatch(/unreachable/);

    await proxy.up();
    await quiesce(runtime, [ts]);
    await expectStoreMatchesGroundTruth(suite.core.db, ws, connection, ts.groundTruth, 'ts-outage');
    const counts = accounted(runtime);
    expect(counts).toMatchObject({ dropped: 0, buffered: 0 });
    expect(counts.readingsIn).toBe(counts.delivered + counts.coalesced);
  }, 60_000);

  it('coalesces per vehicle: the newest value of each signal over the window, the rest counted', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Coalescing depot' })).id;
    const model = fleet(306, 3);
    const tr = await traccar('tr-coalesce', model);
    await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: tr.url, token: 'tr-coalesce', vehicles: model.vehicles });
    const runtime = stream({ coalesceMs: 1000, holder: 'coalescing-runtime' });
    await until('coalesced readings', () => runtime.coalescer.coalesced > 10, 20_000);
    await quiesce(runtime, [tr]);
    const counts = accounted(runtime);
    expect(counts.readingsIn).toBe(counts.delivered + counts.coalesced + counts.dropped);
    expect(counts.delivered).toBeLessThan(counts.readingsIn);
  });

  it('shares connections between two runtimes without ever holding one twice, and hands them over on a clean stop', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Shared depot' })).id;
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      const model = fleet(310 + i, 2);
      const sim = await traccar(`tr-shared-${i}`, model);
      const c = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: sim.url, token: `tr-shared-${i}`, vehicles: model.vehicles });
      ids.push(c.connectionId);
    }
    const mine = (runtime: StreamRuntime) => ids.filter((id) => runtime.connections.has(id));
    const a = stream({ holder: 'runtime-a' });
    await until('runtime A to hold all four', () => mine(a).length === 4);
    const b = stream({ holder: 'runtime-b' });
    // Every moment: no connection held by both.
    const overlaps: string[] = [];
    const watch = setInterval(() => overlaps.push(...mine(a).filter((id) => b.connections.has(id))), 20);
    try {
      await until('a fair share each', () => mine(a).length === 2 && mine(b).length === 2, 20_000);
      const { rows } = await suite.core.db.query<{ holder: string; n: number }>(
        `SELECT holder, count(*)::int AS n FROM stream_leases WHERE connection_id = ANY($1::uuid[]) AND expires_at > now() GROUP BY holder ORDER BY holder`,
        [ids],
      );
      expect(rows).toEqual([
        { holder: 'runtime-a', n: 2 },
        { holder: 'runtime-b', n: 2 },
      ]);
      await a.stop();
      await until('runtime B to take over all four', () => mine(b).length === 4, 20_000);
    } finally {
      clearInterval(watch);
    }
    expect(overlaps).toEqual([]);
  });
});
