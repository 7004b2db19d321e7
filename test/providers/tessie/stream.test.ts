/**
 * Tessie's messages other than data, over real websockets through the stream runtime into core: a connectivity
 * message (the MQTT dispatcher's spelling, without a VIN: the socket says whose) becomes each vehicle's
 * `connectivity_state`, and alerts and errors are counted, never bad frames, while the connection stays healthy.
 * The frames are the shapes of teslamotors/fleet-telemetry protos/vehicle_connectivity.proto and
 * vehicle_alert.proto / vehicle_error.proto (see decode.test.ts), sent to every open socket by the simulator.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createWorkspace } from '../../../src/core/registry/workspaces.ts';
import { createLogger } from '../../../src/logging.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';
import { startTessieSimulator } from '../../../src/sim/tessie/simulator.ts';
import { connectStreamProvider, pastFastClock, startTestStream, until, useStreamTestCore } from '../../support/stream.ts';

const quiet = createLogger({ level: 'warn', name: 'tessie-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const suite = useStreamTestCore();

describe('tessie connectivity, alerts and errors over the stream runtime', () => {
  it('turns connectivity into connectivity_state per vehicle and counts alerts and errors, with no bad frame', async () => {
    const clock = pastFastClock();
    const ws = (await createWorkspace(suite.core.db, { name: 'Tessie depot' })).id;
    const fleet = new FleetModel({ seed: 411, vehicles: 2, startMs: clock.startMs, timeScale: 5 });
    const sim = await startTessieSimulator({ accounts: [{ credentials: { accessToken: 'tessie-links' }, fleet }], now: clock.now, tickMs: 50 });
    suite.stops.push(() => sim.stop());
    const connection = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'tessie', baseUrl: sim.url, token: 'tessie-links', vehicles: fleet.vehicles });
    const runtime = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet });
    suite.stops.push(() => runtime.stop());
    await until('both sockets open', () => runtime.status(connection.connectionId)?.socketsOpen === 2 || undefined);

    const createdAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 2000).toISOString().replace('.000Z', 'Z');
    sim.sendMalformedFrame(JSON.stringify({ ConnectionId: '5b2a1d2e-7c1f-4e0b-9a55-4c1f0e6d7a10', Status: 'DISCONNECTED', CreatedAt: createdAt }));
    sim.sendMalformedFrame(JSON.stringify({ alerts: [{ name: 'TestAlert1', audiences: ['Customer'], startedAt: createdAt, endedAt: null }], createdAt }));
    sim.sendMalformedFrame(JSON.stringify({ errors: [{ createdAt, name: 'TestError1', tags: {}, body: 'This is a test error' }], createdAt }));

    for (const vehicleId of connection.vehicles.values()) {
      const link = await until('the link in the snapshot', async () => {
        const { rows } = await suite.core.db.query<{ value: string; observed_at: Date }>(
          `SELECT value, observed_at FROM signal_snapshot WHERE workspace_id = $1 AND vehicle_id = $2 AND signal = 'connectivity_state'`,
          [ws, vehicleId],
        );
        return rows[0];
      });
      expect(link.value).toBe('offline');
      expect(new Date(link.observed_at).toISOString()).toBe(new Date(createdAt).toISOString());
    }
    const counters = runtime.connections.get(connection.connectionId)!.counters;
    await until('alerts and errors counted on both sockets', () => (counters.alerts === 2 && counters.errors === 2) || undefined);
    expect(counters.badFrames).toBe(0);
    await until('status at core', async () => {
      const state = (await suite.core.http.admin('GET', `/v1/workspaces/${ws}/connections/${connection.connectionId}`)).body.streamState;
      return state?.connected === true ? state : undefined;
    });
    const health = (await suite.core.http.admin<{ connections: { id: string; status: string }[] }>('GET', `/v1/workspaces/${ws}/health`)).body;
    expect(health.connections.find((c) => c.id === connection.connectionId)?.status).toBe('ok');
  });
});
