/**
 * The stream runtime as its own process (`fleetwire stream`): it serves /healthz and /metrics, and when it is
 * killed its connections are taken over by another runtime within 60 s. And one vehicle fed by both paths at once
 * (polled from Samsara, streamed from Traccar, one fleet behind both): the snapshot follows observed time, and
 * what both paths report about the same moment is stored once.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createConnection } from '../../src/core/registry/connections.ts';
import { addVehicleDevices } from '../../src/core/registry/vehicles.ts';
import { createWorkspace } from '../../src/core/registry/workspaces.ts';
import { createLogger } from '../../src/logging.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { startTraccarSimulator } from '../../src/sim/traccar/simulator.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { servedKey } from '../../src/sim/ground-truth.ts';
import type { StreamRuntime } from '../../src/stream/runtime.ts';
import { freePort, startFleetwire, type Running } from '../support/processes.ts';
import { checkStoreInvariants } from '../support/store-invariants.ts';
import { connectStreamProvider, drained, pastFastClock, startTestStream, takenInEverything, until, useStreamTestCore } from '../support/stream.ts';

const quiet = createLogger({ level: 'warn', name: 'stream-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const suite = useStreamTestCore();
const stops = suite.stops;

function runtime(holder: string): StreamRuntime {
  const r = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet, holder, refreshMs: 500 });
  stops.push(() => r.stop());
  return r;
}

describe('fleetwire stream', () => {
  it('serves /healthz and /metrics, and when killed its connections are taken over within 60 s', async () => {
    const clock = pastFastClock();
    const ws = (await createWorkspace(suite.core.db, { name: 'Process depot' })).id;
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const fleet = new FleetModel({ seed: 400 + i, vehicles: 2, startMs: clock.startMs, timeScale: 5 });
      const sim = await startTraccarSimulator({ accounts: [{ credentials: { token: `tr-proc-${i}` }, fleet }], now: clock.now, tickMs: 100, keepaliveMs: 1000 });
      stops.push(() => sim.stop());
      const c = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: sim.url, token: `tr-proc-${i}`, vehicles: fleet.vehicles });
      ids.push(c.connectionId);
    }
    const port = await freePort();
    const process: Running = startFleetwire(['stream'], {
      FLEETWIRE_CORE_URL: suite.core.url,
      FLEETWIRE_SERVICE_TOKEN: suite.core.serviceToken,
      FLEETWIRE_PORT: String(port),
      FLEETWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), 'fleetwire-stream-')),
      FLEETWIRE_LOG_LEVEL: 'warn',
    });
    stops.push(() => process.stop('SIGKILL'));

    const holder = await until(
      'the stream process to hold every connection',
      async () => {
        const { rows } = await suite.core.db.query<{ holder: string; n: number }>(
          'SELECT holder, count(*)::int AS n FROM stream_leases WHERE connection_id = ANY($1::uuid[]) AND expires_at > now() GROUP BY holder',
          [ids],
        );
        return rows.length === 1 && rows[0]!.n === 3 ? rows[0]!.holder : undefined;
      },
      30_000,
    );
    expect(holder).toContain(`:${process.child.pid}:`);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.json()).toMatchObject({ status: 'ok', connections: 3 });
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
    await until('readings from the stream process', async () => {
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${suite.core.serviceToken}` } });
      const text = await metrics.text();
      const delivered = Number(/fleetwire_stream_readings\{outcome="delivered"\} (\d+)/.exec(text)?.[1] ?? 0);
      return delivered > 0 ? true : undefined;
    }, 20_000);

    const killedAt = Date.now();
    await process.stop('SIGKILL');
    const successor = runtime('successor');
    await until('the successor to hold every connection', () => ids.every((id) => successor.connections.has(id)), 70_000);
    expect((Date.now() - killedAt) / 1000).toBeLessThan(60);
    await until('the successor to be connected', () =>
      ids.every((id) => successor.status(id)!.connected),
    );
  }, 120_000);
});

describe('one vehicle on both paths', () => {
  it('keeps the snapshot at the newest observation whichever path brought it, and stores what both saw once', async () => {
    const clock = pastFastClock();
    // One fleet behind both providers: the same vehicles, seen through Samsara's feed and Traccar's socket.
    const fleet = new FleetModel({ seed: 500, vehicles: 3, startMs: clock.startMs, timeScale: 5 });
    const samsara = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'sam-both' }, fleet }], now: clock.now, pageSize: 50 });
    const traccar = await startTraccarSimulator({ accounts: [{ credentials: { token: 'tr-both' }, fleet }], now: clock.now, tickMs: 50, keepaliveMs: 500 });
    stops.push(() => samsara.stop(), () => traccar.stop());

    const ws = (await createWorkspace(suite.core.db, { name: 'Both paths depot' })).id;
    const streamed = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: traccar.url, token: 'tr-both', vehicles: fleet.vehicles });
    const polled = await createConnection(suite.core.db, suite.core.secretKey, ws, { provider: 'samsara', transport: 'poll', baseUrl: samsara.url, credentials: { apiToken: 'sam-both' } });
    for (const vehicle of fleet.vehicles) {
      await addVehicleDevices(suite.core.db, ws, streamed.vehicles.get(vehicle.traccarUniqueId)!, [{ connectionId: polled.id, externalId: vehicle.samsaraId }]);
    }

    const stream = runtime('both-paths');
    for (let i = 0; i < 6; i += 1) {
      await suite.core.runner.runWorkspace({ workspaceId: ws, eventId: `both-${i}` });
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    // Serving ends: the clock stops, the last poll and the stream runtime take in what was served, then the
    // simulators go.
    clock.freeze();
    await suite.core.runner.runWorkspace({ workspaceId: ws, eventId: 'both-last' });
    await takenInEverything(stream);
    await samsara.stop();
    await traccar.stop();
    await drained(stream);

    // Everything either provider served is stored, once, for the right vehicle.
    const vehicleOf = new Map<string, string>();
    for (const vehicle of fleet.vehicles) {
      const id = streamed.vehicles.get(vehicle.traccarUniqueId)!;
      vehicleOf.set(vehicle.traccarUniqueId, id);
      vehicleOf.set(vehicle.samsaraId, id);
    }
    const served = new Set<string>();
    for (const reading of [...samsara.groundTruth.all(), ...traccar.groundTruth.all()]) {
      served.add(servedKey({ ...reading, externalDeviceId: vehicleOf.get(reading.externalDeviceId)! }));
    }
    const { rows } = await suite.core.db.query<{ vehicle_id: string; signal: string; observed_ms: number; source: string }>(
      `SELECT vehicle_id, signal, (extract(epoch FROM observed_at) * 1000)::float8 AS observed_ms, source FROM signal_history WHERE workspace_id = $1`,
      [ws],
    );
    const stored = new Set(rows.map((r) => `${r.vehicle_id}|${r.signal}|${Math.round(r.observed_ms)}`));
    expect([...served].filter((key) => !stored.has(key)).slice(0, 5)).toEqual([]);
    expect(stored.size).toBe(rows.length);
    expect(new Set(rows.map((r) => r.source))).toEqual(new Set(['poll', 'stream']));
    // The two paths saw some of the same moments: those were stored once, the second arrival a duplicate.
    const polledRuns = (await suite.core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=100`)).body.items;
    const duplicates = (stream.pipeline.answered.duplicate ?? 0) + polledRuns.reduce((n: number, r: { readings: { duplicate: number } }) => n + r.readings.duplicate, 0);
    expect(duplicates).toBeGreaterThan(0);

    expect((await checkStoreInvariants(suite.core.db, ws)).snapshotNotNewest).toEqual([]);
  }, 60_000);
});
