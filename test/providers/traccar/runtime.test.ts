/**
 * A Traccar connection through the real stream runtime, the simulator on loopback and a test core: the upgrade
 * refusals Traccar's Jetty gives (500 or 503, never 401) end as `auth` when GET /api/devices refuses the token
 * and stay transient when the server is really down; and the connection's attribute options travel from core to
 * the adapter, so the store holds exactly what the simulator served for them.
 */
import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { createConnection } from '../../../src/core/registry/connections.ts';
import { createVehicle } from '../../../src/core/registry/vehicles.ts';
import { createWorkspace } from '../../../src/core/registry/workspaces.ts';
import { createLogger } from '../../../src/logging.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';
import { simulatedEvAttributes } from '../../../src/sim/traccar/simulator-frames.ts';
import { startTraccarSimulator, type RunningTraccarSimulator, type TraccarSimulatorOptions } from '../../../src/sim/traccar/simulator.ts';
import { expectStoreMatchesGroundTruth, type SimulatedConnection } from '../../support/simulated.ts';
import { drained, pastFastClock, startTestStream, takenInEverything, until, useStreamTestCore } from '../../support/stream.ts';

const quiet = createLogger({ level: 'warn', name: 'traccar-runtime-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const suite = useStreamTestCore();
let clock = pastFastClock();
beforeEach(() => {
  clock = pastFastClock();
});

async function simulator(token: string, vehicles: number, options: Partial<TraccarSimulatorOptions> = {}): Promise<{ sim: RunningTraccarSimulator; fleet: FleetModel }> {
  const fleet = new FleetModel({ seed: 404, vehicles, startMs: clock.startMs, timeScale: 5 });
  const sim = await startTraccarSimulator({ accounts: [{ credentials: { token }, fleet }], now: clock.now, tickMs: 50, keepaliveMs: 200, ...options });
  suite.stops.push(() => sim.stop());
  return { sim, fleet };
}

/** A Traccar stream connection with one vehicle per simulated vehicle, bound by uniqueId. */
async function connection(workspaceId: string, baseUrl: string, token: string, fleet: FleetModel, options?: unknown): Promise<SimulatedConnection> {
  const created = await createConnection(suite.core.db, suite.core.secretKey, workspaceId, { provider: 'traccar', transport: 'stream', baseUrl, credentials: { token }, options });
  const vehicles = new Map<string, string>();
  for (const vehicle of fleet.vehicles) {
    vehicles.set(vehicle.traccarUniqueId, await createVehicle(suite.core.db, workspaceId, { name: vehicle.name, devices: [{ connectionId: created.id, externalId: vehicle.traccarUniqueId }] }));
  }
  return { connectionId: created.id, vehicles };
}

function runtime(holder: string) {
  const stream = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet, holder });
  suite.stops.push(() => stream.stop());
  return stream;
}

async function streamState(workspaceId: string, connectionId: string) {
  return (await suite.core.http.admin('GET', `/v1/workspaces/${workspaceId}/connections/${connectionId}`)).body.streamState;
}

describe('traccar upgrade refusals through the stream runtime', () => {
  it.each([500, 503] as const)('a %s upgrade with a token Traccar refuses ends as auth, and the health says the credentials', async (status) => {
    const ws = (await createWorkspace(suite.core.db, { name: `Refused ${status} depot` })).id;
    const { sim, fleet } = await simulator('tr-right', 2, { refusedTokenStatus: status });
    const c = await connection(ws, sim.url, 'tr-wrong-token', fleet);
    runtime(`refused-${status}`);
    const state = await until('the refusal to be reported as auth', async () => {
      const view = await streamState(ws, c.connectionId);
      return view?.lastErrorClass === 'auth' ? view : undefined;
    });
    expect(state.connected).toBe(false);
    expect(state.lastError).toContain(`HTTP ${status}`);
    expect(state.lastError).toContain('refuses the credentials');
    expect(state.lastError).not.toContain('tr-wrong-token');
    const health = (await suite.core.http.admin('GET', `/v1/workspaces/${ws}/health`)).body as { connections: { id: string; status: string }[] };
    expect(health.connections.find((h) => h.id === c.connectionId)?.status).toBe('auth_failed');
  });

  it('a 503 with a good token while the server is down stays transient, and connects once it is back', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Down depot' })).id;
    const { sim, fleet } = await simulator('tr-good', 2);
    sim.setUnavailable(true);
    const c = await connection(ws, sim.url, 'tr-good', fleet);
    const stream = runtime('server-down');
    const seen = new Set<string | null>();
    const state = await until('a few refused reconnects', async () => {
      const view = await streamState(ws, c.connectionId);
      seen.add(view?.lastErrorClass ?? null);
      return view && view.reconnects >= 3 ? view : undefined;
    });
    expect(state.lastErrorClass).toBe('transient');
    expect(state.lastError).toContain('HTTP 503');
    expect(seen.has('auth')).toBe(false);
    const health = (await suite.core.http.admin('GET', `/v1/workspaces/${ws}/health`)).body as { connections: { id: string; status: string }[] };
    expect(health.connections.find((h) => h.id === c.connectionId)?.status).toBe('disconnected');
    sim.setUnavailable(false);
    await until('the connection to open once the server is back', () => (stream.status(c.connectionId)?.socketsOpen ?? 0) === 1 || undefined, 10_000);
  });
});

describe('traccar attribute options through the stream runtime', () => {
  it.each([
    ['default options: the tracker battery, no state of charge', undefined, false],
    ["the demo's options: the vehicle's state of charge and charging too", simulatedEvAttributes, true],
  ] as const)('%s', async (_what, options, mapped) => {
    const ws = (await createWorkspace(suite.core.db, { name: `Options depot ${mapped}` })).id;
    const token = `tr-options-${mapped}`;
    const { sim, fleet } = await simulator(token, 3, { evAttributesMapped: mapped });
    const c = await connection(ws, sim.url, token, fleet, options);
    const stream = runtime(`options-${mapped}`);
    await until('readings served', () => sim.groundTruth.all().length > 60 || undefined);
    clock.freeze();
    await takenInEverything(stream);
    await sim.stop();
    await drained(stream);
    await expectStoreMatchesGroundTruth(suite.core.db, ws, c, sim.groundTruth, token);
    const { rows } = await suite.core.db.query<{ signal: string }>(`SELECT DISTINCT signal FROM signal_history WHERE workspace_id = $1 ORDER BY signal`, [ws]);
    const signals = rows.map((r) => r.signal);
    expect(signals).toContain('tracker_battery_pct');
    expect(signals.includes('soc_pct')).toBe(mapped);
  });
});
