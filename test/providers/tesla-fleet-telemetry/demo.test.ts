/**
 * What `npm start` does about Tesla Fleet Telemetry (src/demo): with no broker on the probed port it starts no
 * publisher and seeds no fleet-telemetry connection (the demo's Teslas are Tessie's alone), and it disables one an
 * earlier start seeded; with the machine's Mosquitto it runs the simulated MQTT dispatcher and seeds a connection
 * whose vehicles reach the snapshot through the broker and the stream runtime, and after a restart the links the
 * dispatcher announced reach it too (held by the broker for the stream's persistent session).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { listConnections } from '../../../src/core/registry/connections.ts';
import { listWorkspaces } from '../../../src/core/registry/workspaces.ts';
import { seedDemo } from '../../../src/demo/seed.ts';
import { demoFleetSizes, fleetTelemetryFleetSize, startDemoSimulators, type DemoProvider } from '../../../src/demo/simulators.ts';
import { createLogger } from '../../../src/logging.ts';
import { startTestStream, until, useStreamTestCore } from '../../support/stream.ts';

const quiet = createLogger({ level: 'warn', name: 'demo-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const suite = useStreamTestCore();
const ports = Object.fromEntries(Object.keys(demoFleetSizes).map((provider) => [provider, 0])) as Record<DemoProvider, number>;
const small = Object.fromEntries(Object.keys(demoFleetSizes).map((provider) => [provider, 2])) as Record<DemoProvider, number>;

async function southDepot() {
  const south = (await listWorkspaces(suite.core.db)).find((w) => w.name === 'South depot')!;
  return { id: south.id, connections: await listConnections(suite.core.db, south.id) };
}

describe('the demo and a local MQTT broker', () => {
  it('seeds a fleet-telemetry connection fed through the broker when one answers, and disables it when none does', { timeout: 60_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-demo-test-'));
    suite.stops.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const topicBase = `fwtest${randomBytes(5).toString('hex')}/telemetry`;

    const withBroker = await startDemoSimulators({ host: '127.0.0.1', ports, timeScale: 30, vehicles: small, mqttBroker: { host: '127.0.0.1', port: 1883, topicBase } });
    suite.stops.push(() => withBroker.stop());
    expect(withBroker.fleetTelemetry?.publisher.url).toBe(`mqtt://127.0.0.1:1883/${topicBase}`);
    await seedDemo(suite.core.db, suite.core.secretKey, withBroker, dataDir);
    const seeded = await southDepot();
    const connection = seeded.connections.find((c) => c.provider === 'tesla-fleet-telemetry')!;
    expect(connection).toMatchObject({ transport: 'stream', enabled: true, baseUrl: `mqtt://127.0.0.1:1883/${topicBase}`, options: { socField: 'BatteryLevel' } });
    expect(seeded.connections.map((c) => c.provider).sort()).toEqual(['geotab', 'tesla-fleet-telemetry', 'tessie']);
    suite.stops.push(async () => {
      const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: `fleetwire-${connection.id}`, clean: true });
      await client.endAsync();
    });

    const runtime = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet });
    suite.stops.push(() => runtime.stop());
    await until('a field published by the dispatcher in the snapshot', async () => {
      const answer = await suite.core.db.query(`SELECT 1 FROM signal_snapshot WHERE workspace_id = $1 AND connection_id = $2`, [seeded.id, connection.id]);
      return answer.rows.length > 0 || undefined;
    }, 20_000);
    await withBroker.stop();

    // A restart of the demo: its dispatcher announces each vehicle's link as it starts, and the broker holds those
    // for the subscription the stream runtime made, whenever it comes back.
    const again = await startDemoSimulators({ host: '127.0.0.1', ports, timeScale: 30, vehicles: small, mqttBroker: { host: '127.0.0.1', port: 1883, topicBase } });
    suite.stops.push(() => again.stop());
    await seedDemo(suite.core.db, suite.core.secretKey, again, dataDir);
    const links = await until('every dispatcher vehicle’s link in the snapshot', async () => {
      const answer = await suite.core.db.query<{ value: string }>(
        `SELECT value FROM signal_snapshot WHERE workspace_id = $1 AND connection_id = $2 AND signal = 'connectivity_state'`,
        [seeded.id, connection.id],
      );
      return answer.rows.length === fleetTelemetryFleetSize ? answer.rows : undefined;
    }, 20_000);
    expect(links.map((r) => r.value)).toEqual(Array(fleetTelemetryFleetSize).fill('online'));
    await runtime.stop();
    await again.stop();

    // Port 9 (discard) has nobody listening here: no publisher, and the connection seeded before is disabled.
    const without = await startDemoSimulators({ host: '127.0.0.1', ports, timeScale: 30, vehicles: small, mqttBroker: { host: '127.0.0.1', port: 9 } });
    suite.stops.push(() => without.stop());
    expect(without.fleetTelemetry).toBeUndefined();
    await seedDemo(suite.core.db, suite.core.secretKey, without, dataDir);
    const after = await southDepot();
    expect(after.connections.find((c) => c.provider === 'tesla-fleet-telemetry')?.enabled).toBe(false);
    expect(after.connections.find((c) => c.provider === 'tessie')?.enabled).toBe(true);
  });
});
