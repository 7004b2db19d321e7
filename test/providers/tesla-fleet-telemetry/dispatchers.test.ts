/**
 * Tesla Fleet Telemetry end to end through real brokers: the Mosquitto (127.0.0.1:1883) and Redis (127.0.0.1:6379)
 * of this machine, published to with the `mqtt` and `ioredis` clients in the shapes fleet-telemetry's dispatchers
 * publish (datastore/mqtt/mqtt_payload.go, datastore/redis/redis.go), through the stream runtime and core's ingest
 * into the snapshot. Each test has a topic base or namespace of its own, so parallel runs never see each other.
 * Also: refused credentials are `auth` (Redis's own refusal; for MQTT a private Mosquitto this test starts with a
 * password file, as the shared one takes anyone), an unreachable broker `transient`, and with MQTT QoS 1 a stream
 * runtime stopped for 30 s while the server goes on publishing loses nothing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../../src/core/db/database.ts';
import { createConnection } from '../../../src/core/registry/connections.ts';
import { createVehicle } from '../../../src/core/registry/vehicles.ts';
import { createWorkspace } from '../../../src/core/registry/workspaces.ts';
import { createLogger } from '../../../src/logging.ts';
import type { StreamRuntime } from '../../../src/stream/runtime.ts';
import { startTestStream, until, useStreamTestCore } from '../../support/stream.ts';

const quiet = createLogger({ level: 'warn', name: 'fleet-telemetry-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const suite = useStreamTestCore();
const stops = suite.stops;
const unique = () => `fwtest${randomBytes(5).toString('hex')}`;
const vins = ['5YJ3E1EA1KF000101', '5YJ3E1EA1KF000102'];
const unboundVin = '5YJ3E1EA1KF000199';

function stream(): StreamRuntime {
  const runtime = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet });
  stops.push(() => runtime.stop());
  return runtime;
}

/** A tesla-fleet-telemetry connection with one vehicle bound per VIN. */
async function connectFleetTelemetry(
  db: Database,
  baseUrl: string,
  credentials: Record<string, string> = {},
  options: Record<string, unknown> = {},
): Promise<{ workspaceId: string; connectionId: string; vehicles: Map<string, string> }> {
  const workspaceId = (await createWorkspace(db, { name: `Fleet telemetry ${unique()}` })).id;
  const connection = await createConnection(db, suite.core.secretKey, workspaceId, { provider: 'tesla-fleet-telemetry', transport: 'stream', baseUrl, credentials, options });
  const vehicles = new Map<string, string>();
  for (const vin of vins) vehicles.set(vin, await createVehicle(db, workspaceId, { name: vin, vin, devices: [{ connectionId: connection.id, externalId: vin }] }));
  return { workspaceId, connectionId: connection.id, vehicles };
}

async function snapshot(workspaceId: string, vehicleId: string): Promise<Record<string, { value: unknown; observedAt: string }>> {
  const { rows } = await suite.core.db.query<{ signal: string; value: unknown; observed_at: Date }>(
    'SELECT signal, value, observed_at FROM signal_snapshot WHERE workspace_id = $1 AND vehicle_id = $2',
    [workspaceId, vehicleId],
  );
  return Object.fromEntries(rows.map((r) => [r.signal, { value: r.value, observedAt: new Date(r.observed_at).toISOString() }]));
}

const status = async (workspaceId: string, connectionId: string) =>
  (await suite.core.http.admin<{ streamState: Record<string, unknown> | null }>('GET', `/v1/workspaces/${workspaceId}/connections/${connectionId}`)).body.streamState;

async function publisher(): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: `fwtest-pub-${unique()}`, clean: true });
  stops.push(() => client.endAsync());
  return client;
}

/** Drops the persistent session the connection left on the broker (Mosquitto keeps it otherwise). */
function forgetSession(connectionId: string) {
  stops.push(async () => {
    const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: `fleetwire-${connectionId}`, clean: true });
    await client.endAsync();
  });
}

/** A free loopback port (asked of the kernel, then released for the broker to take). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A Mosquitto of this test's own that takes one account only; stopped (by its pid) after the test. */
async function privateMosquitto(username: string, password: string): Promise<{ url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwire-mosquitto-'));
  // Mosquitto started as root drops to its own user, which must be able to read the password file.
  chmodSync(dir, 0o755);
  const passwords = join(dir, 'passwords');
  execFileSync('mosquitto_passwd', ['-b', '-c', passwords, username, password]);
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwords}\npersistence false\n`);
  const broker = spawn('mosquitto', ['-c', config], { stdio: 'ignore' });
  stops.push(async () => {
    broker.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  await until('the private broker to listen', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, password, reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined);
    await client?.endAsync();
    return client ? true : undefined;
  });
  return { url: `mqtt://127.0.0.1:${port}` };
}

describe('MQTT dispatcher through Mosquitto', () => {
  it('delivers metrics (observed at arrival), connectivity and values of either type into the snapshot; unbound VINs dropped, alerts counted', async () => {
    const base = `${unique()}/telemetry`;
    const { workspaceId, connectionId, vehicles } = await connectFleetTelemetry(suite.core.db, `mqtt://127.0.0.1:1883/${base}`);
    forgetSession(connectionId);
    const runtime = stream();
    await until('the subscription to be open', () => runtime.status(connectionId)?.connected === true);
    const pub = await publisher();
    const [first, second] = vins as [string, string];
    const before = Date.now();
    const send = (topic: string, payload: string) => pub.publishAsync(`${base}/${topic}`, payload, { qos: 1 });
    await send(`${first}/v/BatteryLevel`, '75.5');
    await send(`${first}/v/Location`, '{"latitude":37.7749,"longitude":-122.4194}');
    await send(`${first}/v/Odometer`, '"11270.940"');
    await send(`${first}/v/DetailedChargeState`, '"DetailedChargeStateCharging"');
    await send(`${first}/v/EstBatteryRange`, 'null');
    await send(`${first}/v/Soc`, '74.9');
    await send(`${second}/connectivity`, '{"ConnectionId":"5b2a1d2e","CreatedAt":"2024-05-01T14:09:58Z","Status":"DISCONNECTED"}');
    await send(`${second}/connectivity`, JSON.stringify({ ConnectionId: '0c9d4a77', CreatedAt: new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z'), Status: 'CONNECTED' }));
    await send(`${unboundVin}/v/BatteryLevel`, '12');
    await send(`${first}/alerts/TestAlert1/current`, '{"Audiences":["Customer"],"StartedAt":"2024-05-01T14:00:00Z"}');
    await send(`${first}/errors/TestError1`, '{"Body":"This is a test error","Tags":{},"CreatedAt":"2024-05-01T14:02:00Z"}');
    await send(`${first}/v/BatteryLevel`, '[1]');

    const vehicle = vehicles.get(first)!;
    const seen = await until('the metrics in the snapshot', async () => {
      const s = await snapshot(workspaceId, vehicle);
      return s.soc_pct && s.location && s.odometer_km && s.charging_state ? s : undefined;
    });
    expect(seen.soc_pct!.value).toBe(75.5);
    expect(seen.location!.value).toEqual({ lat: 37.7749, lon: -122.4194 });
    expect(seen.odometer_km!.value).toBe(18138.82);
    expect(seen.charging_state!.value).toBe('charging');
    expect(seen.plugged_in!.value).toBe(true);
    // No time in the payload: each is observed when it arrived, after it was published and before we looked.
    for (const signal of ['soc_pct', 'location', 'odometer_km'] as const) {
      const at = Date.parse(seen[signal]!.observedAt);
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(Date.now());
    }
    const link = await until('the connectivity in the snapshot', async () => (await snapshot(workspaceId, vehicles.get(second)!)).connectivity_state);
    expect(link.value).toBe('online');

    const connection = runtime.connections.get(connectionId)!;
    await until('the alert, the error and the bad payload counted', () => connection.counters.errors === 1 && connection.counters.badFrames === 1 || undefined);
    expect(connection.counters).toMatchObject({ alerts: 1, errors: 1, invalidValues: 1, unboundReadings: 1, badFrames: 1 });
    const reported = await until('status at core, with the bad frame', async () => {
      const state = await status(workspaceId, connectionId);
      return state?.connected === true && state.badFrames === 1 ? state : undefined;
    });
    expect(reported).toMatchObject({ connected: true, sockets: 1, socketsOpen: 1, badFrames: 1, lastErrorClass: null });
  });

  it('takes refused credentials for auth, and subscribes with the right ones', async () => {
    const broker = await privateMosquitto('fleetwire', 'right-password');
    const base = unique();
    const wrong = await connectFleetTelemetry(suite.core.db, `${broker.url}/${base}`, { username: 'fleetwire', password: 'wrong-password' });
    const right = await connectFleetTelemetry(suite.core.db, `${broker.url}/${base}`, { username: 'fleetwire', password: 'right-password' });
    const runtime = stream();
    const refused = await until('the refusal in the status', () => {
      const s = runtime.status(wrong.connectionId);
      return s?.lastErrorClass ? s : undefined;
    });
    expect(refused).toMatchObject({ connected: false, lastErrorClass: 'auth' });
    expect(refused.lastError).not.toMatch(/password/);
    await until('the right credentials to subscribe', () => runtime.status(right.connectionId)?.connected === true || undefined);
    const pub = await mqtt.connectAsync(broker.url, { username: 'fleetwire', password: 'right-password' });
    stops.push(() => pub.endAsync());
    await pub.publishAsync(`${base}/${vins[0]}/v/BatteryLevel`, '61', { qos: 1 });
    const seen = await until('the reading in the snapshot', async () => (await snapshot(right.workspaceId, right.vehicles.get(vins[0]!)!)).soc_pct);
    expect(seen.value).toBe(61);
  });

  it('takes an unreachable broker for transient and keeps trying', async () => {
    const { workspaceId, connectionId } = await connectFleetTelemetry(suite.core.db, `mqtt://127.0.0.1:1/${unique()}`);
    const runtime = stream();
    const seen = await until('the failure in the status', () => {
      const s = runtime.status(connectionId);
      return s && s.reconnects >= 2 ? s : undefined;
    });
    expect(seen).toMatchObject({ connected: false, socketsOpen: 0, lastErrorClass: 'transient' });
    expect(seen.nextReconnectAt).not.toBeNull();
    await until('status at core', async () => (await status(workspaceId, connectionId))?.lastErrorClass === 'transient' || undefined);
  });

  it('loses nothing published at QoS 1 while the stream runtime is stopped for 30 s (persistent session)', { timeout: 120_000 }, async () => {
    const base = unique();
    const { workspaceId, connectionId, vehicles } = await connectFleetTelemetry(suite.core.db, `mqtt://127.0.0.1:1883/${base}`);
    forgetSession(connectionId);
    const vin = vins[0]!;
    // Subscribed once, before the server publishes: from then on the broker keeps the session and queues for it.
    const first = stream();
    await until('the first runtime to subscribe', () => first.status(connectionId)?.connected === true);
    const pub = await publisher();
    const published: number[] = [];
    let publishing = true;
    // As the MQTT dispatcher with `qos: 1`: one message per field, every 100 ms, values that tell them apart.
    const loop = (async () => {
      for (let i = 0; publishing; i += 1) {
        const value = Math.round((10 + i * 0.01) * 1000) / 1000;
        await pub.publishAsync(`${base}/${vin}/v/BatteryLevel`, JSON.stringify(value), { qos: 1 });
        published.push(value);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    stops.push(async () => {
      publishing = false;
      await loop;
    });

    const history = async () =>
      (
        await suite.core.db.query<{ value: number; observed_at: Date }>(
          `SELECT value, observed_at FROM signal_history WHERE workspace_id = $1 AND vehicle_id = $2 AND signal = 'soc_pct' ORDER BY observed_at`,
          [workspaceId, vehicles.get(vin)!],
        )
      ).rows;

    await until('readings through the first runtime', async () => ((await history()).length >= 5 ? true : undefined));
    await first.stop();
    const stoppedAt = published.length;
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    const whileStopped = published.length - stoppedAt;
    expect(whileStopped).toBeGreaterThan(200);

    const second = stream();
    await until('readings through the second runtime', () => ((second.connections.get(connectionId)?.counters.readingsIn ?? 0) > whileStopped ? true : undefined), 30_000);
    publishing = false;
    await loop;
    await until('everything published in the history', async () => ((await history()).length >= published.length ? true : undefined), 30_000);

    const rows = await history();
    const stored = rows.map((r) => r.value);
    // Every value published is stored, in the order it was published (QoS 1 keeps one topic's order), none twice.
    expect(new Set(stored)).toEqual(new Set(published));
    expect(stored).toEqual(published);
    expect(new Set(rows.map((r) => new Date(r.observed_at).getTime())).size).toBe(rows.length);
    expect((await snapshot(workspaceId, vehicles.get(vin)!)).soc_pct!.value).toBe(published.at(-1));
  });
});

describe('Redis dispatcher through Redis', () => {
  it('delivers records (observed at createdAt) and connectivity from <namespace>_<type>_{<VIN>} into the snapshot; unbound VINs dropped', async () => {
    const namespace = unique();
    const { workspaceId, connectionId, vehicles } = await connectFleetTelemetry(suite.core.db, `redis://127.0.0.1:6379/${namespace}`, {}, { socField: 'Soc' });
    const runtime = stream();
    await until('the subscription to be open', () => runtime.status(connectionId)?.connected === true);
    const redis = new Redis('redis://127.0.0.1:6379');
    stops.push(async () => void redis.disconnect());
    const [first, second] = vins as [string, string];
    const createdAt = new Date(Date.now() - 5_000).toISOString();
    const record = (vin: string, soc: string) =>
      JSON.stringify({
        data: [
          { key: 'Soc', value: { stringValue: soc } },
          { key: 'BatteryLevel', value: { floatValue: 99 } },
          { key: 'Location', value: { locationValue: { latitude: 37.4925352, longitude: -121.9447469 } } },
        ],
        createdAt,
        vin,
        isResend: false,
      });
    // As datastore/redis/redis.go publishes with publish_vin_topics: the record's JSON on its VIN channel.
    expect(await redis.publish(`${namespace}_V_{${first}}`, record(first, '76.500'))).toBe(1);
    await redis.publish(`${namespace}_V_{${unboundVin}}`, record(unboundVin, '10.000'));
    await redis.publish(`${namespace}_connectivity_{${second}}`, JSON.stringify({ vin: second, connectionId: 'c1', status: 'DISCONNECTED', createdAt, networkInterface: 'wifi' }));
    await redis.publish(`${namespace}_alerts_{${first}}`, JSON.stringify({ alerts: [{ name: 'TestAlert1', audiences: ['Customer'], startedAt: createdAt, endedAt: null }], createdAt, vin: first }));

    const seen = await until('the record in the snapshot', async () => {
      const s = await snapshot(workspaceId, vehicles.get(first)!);
      return s.soc_pct && s.location ? s : undefined;
    });
    expect(seen.soc_pct).toEqual({ value: 76.5, observedAt: createdAt });
    expect(seen.location).toEqual({ value: { lat: 37.4925352, lon: -121.9447469 }, observedAt: createdAt });
    const link = await until('connectivity in the snapshot', async () => (await snapshot(workspaceId, vehicles.get(second)!)).connectivity_state);
    expect(link).toEqual({ value: 'offline', observedAt: createdAt });
    const connection = runtime.connections.get(connectionId)!;
    await until('the alert counted', () => connection.counters.alerts === 1 || undefined);
    expect(connection.counters).toMatchObject({ unboundReadings: 2, badFrames: 0 });

    // A vehicle that went offline on purpose leaves the connection healthy: its vehicle says why it is quiet.
    await until('status at core', async () => (await status(workspaceId, connectionId))?.connected === true || undefined);
    const health = (await suite.core.http.admin<{ connections: { id: string; status: string }[] }>('GET', `/v1/workspaces/${workspaceId}/health`)).body;
    expect(health.connections.find((c) => c.id === connectionId)?.status).toBe('ok');
  });

  it('takes an unreachable Redis for transient', async () => {
    const { connectionId } = await connectFleetTelemetry(suite.core.db, `redis://127.0.0.1:1/${unique()}`);
    const runtime = stream();
    const seen = await until('the failure in the status', () => {
      const s = runtime.status(connectionId);
      return s && s.reconnects >= 2 ? s : undefined;
    });
    expect(seen).toMatchObject({ connected: false, socketsOpen: 0, lastErrorClass: 'transient' });
  });

  it('takes refused credentials for auth and waits the longest before trying again', async () => {
    const { workspaceId, connectionId } = await connectFleetTelemetry(suite.core.db, `redis://127.0.0.1:6379/${unique()}`, { username: 'fleetwire-nobody', password: 'not-the-password' });
    const runtime = stream();
    const seen = await until('the refusal in the status', () => {
      const s = runtime.status(connectionId);
      return s?.lastErrorClass ? s : undefined;
    });
    expect(seen).toMatchObject({ connected: false, lastErrorClass: 'auth' });
    expect(seen.lastError).not.toContain('not-the-password');
    // backoffCapMs of the fast test timings is 1000: an auth refusal waits at least half of it.
    expect(Date.parse(seen.nextReconnectAt!) - Date.parse(seen.lastErrorAt!)).toBeGreaterThanOrEqual(400);
    await until('status at core', async () => (await status(workspaceId, connectionId))?.lastErrorClass === 'auth' || undefined);
  });
});
