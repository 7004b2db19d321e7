/**
 * The Tesla Fleet Telemetry subscription adapter on messages of the fleet-telemetry dispatchers, replayed from
 * fixtures taken from teslamotors/fleet-telemetry's source (each fixture names its file): the MQTT dispatcher's
 * per-field messages, connectivity, alerts and errors (datastore/mqtt), and the Redis dispatcher's channels and
 * records (datastore/redis, telemetry/record.go). Also the subscriptions it plans and the base URLs it refuses.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isProviderError } from '../../../src/providers/provider-error.ts';
import type { DecodedFrame } from '../../../src/providers/stream-adapter.ts';
import { teslaFleetTelemetryAdapter } from '../../../src/providers/tesla-fleet-telemetry/adapter.ts';
import { teslaFleetTelemetryContract } from '../../../src/providers/tesla-fleet-telemetry/contract.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { context } from '../../support/stream-client.ts';

interface Message {
  topic: string;
  payload: string;
}
const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as T;
const receivedAtMs = Date.parse('2024-05-01T14:10:00.000Z');
const arrival = new Date(receivedAtMs).toISOString();

function connection(baseUrl: string, options: Record<string, unknown> = {}) {
  return { ...context(baseUrl, {}, []), options: teslaFleetTelemetryContract.options.parse(options), connectionId: '7d0c1f6e-2b9a-4c1d-8e3f-5a6b7c8d9e01' };
}
const decode = (message: Message & { retained?: boolean }, ctx: ReturnType<typeof connection>) => teslaFleetTelemetryAdapter.decodeMessage(message, ctx, receivedAtMs);

/** Every reading of a frame as [device, signal, value, observedAt], checked against the physical invariants. */
function readingsOf(frame: DecodedFrame): [string, string, unknown, string][] {
  if (frame.kind !== 'readings') throw new Error(`expected readings, got ${JSON.stringify(frame)}`);
  expectValidReadings(frame.devices, { notAfterMs: Date.parse('2030-01-01T00:00:00Z') });
  return frame.devices.flatMap((d) => d.readings.map((r): [string, string, unknown, string] => [d.externalDeviceId, r.signal, r.value, r.observedAt]));
}

describe('MQTT dispatcher messages', () => {
  const fields = fixture<{ topicBase: string; messages: Message[] }>('mqtt-vehicle-fields');
  const mqtt = connection(`mqtt://127.0.0.1:1883/${fields.topicBase}`);

  it('maps the upstream test payload: BatteryLevel as soc_pct and the location, observed at arrival; the invalid value is counted', () => {
    const frames = fields.messages.map((m) => decode(m, mqtt));
    expect(frames.flatMap(readingsOf)).toEqual([
      ['TEST123', 'location', { lat: 37.7749, lon: -122.4194 }, arrival],
      ['TEST123', 'soc_pct', 75.5, arrival],
    ]);
    // VehicleName is not a field Fleetwire maps; TimeToFullCharge came as null, the MQTT form of `invalid`, but is not mapped either.
    expect(frames.map((f) => (f.kind === 'readings' ? (f.notes ?? null) : f))).toEqual([null, null, null, null]);
  });

  it('reads numbers and strings alike, converts miles, and takes enums by name', () => {
    const typed = fixture<{ topicBase: string; messages: Message[] }>('mqtt-typed-and-string-values');
    const ctx = connection(`mqtts://broker.example:8883/${typed.topicBase}`);
    const vin = '5YJ3E1EA1KF000001';
    expect(typed.messages.flatMap((m) => readingsOf(decode(m, ctx)))).toEqual([
      [vin, 'soc_pct', 76.5, arrival],
      [vin, 'odometer_km', 18138.82, arrival],
      [vin, 'speed_kph', 50.292, arrival],
      [vin, 'heading_deg', 81.639, arrival],
      [vin, 'range_km', 211.659, arrival],
      [vin, 'battery_temp_c', 41.5, arrival],
      [vin, 'charging_state', 'charging', arrival],
      [vin, 'plugged_in', true, arrival],
      [vin, 'ignition', true, arrival],
    ]);
    // With socField Soc, Soc (74.9) is soc_pct and BatteryLevel is ignored.
    const soc = connection(`mqtt://127.0.0.1:1883/${typed.topicBase}`, { socField: 'Soc' });
    expect(typed.messages.slice(0, 2).flatMap((m) => readingsOf(decode(m, soc)))).toEqual([[vin, 'soc_pct', 74.9, arrival]]);
  });

  it('skips an invalid (null) value of a mapped field with a count', () => {
    expect(decode({ topic: 'test/topic/TEST123/v/BatteryLevel', payload: 'null' }, mqtt)).toEqual({ kind: 'readings', devices: [], notes: { invalidValues: 1 } });
  });

  it('does not stamp a retained copy with its arrival', () => {
    expect(decode({ topic: 'test/topic/TEST123/v/BatteryLevel', payload: '75.5', retained: true }, mqtt)).toEqual({ kind: 'readings', devices: [] });
  });

  it('maps connectivity to connectivity_state at CreatedAt; counts current alerts once (not their history) and errors', () => {
    const other = fixture<{ topicBase: string; connectivity: Message[]; alerts: Message[]; errors: Message[] }>('mqtt-connectivity-alerts-errors');
    expect(other.connectivity.flatMap((m) => readingsOf(decode(m, mqtt)))).toEqual([
      ['TEST123', 'connectivity_state', 'offline', '2024-05-01T14:09:58.000Z'],
      ['TEST123', 'connectivity_state', 'online', '2024-05-01T14:12:03.000Z'],
    ]);
    expect(other.alerts.map((m) => decode(m, mqtt))).toEqual([
      { kind: 'readings', devices: [], notes: { alerts: 1 } },
      { kind: 'readings', devices: [] },
      { kind: 'readings', devices: [], notes: { alerts: 1 } },
    ]);
    expect(other.errors.map((m) => decode(m, mqtt))).toEqual([
      { kind: 'readings', devices: [], notes: { errors: 1 } },
      { kind: 'readings', devices: [], notes: { errors: 1 } },
    ]);
  });

  it.each([
    ['outside the topic base', { topic: 'other/TEST123/v/BatteryLevel', payload: '1' }, /outside the topic base/],
    ['no usable VIN', { topic: 'test/topic/TE ST/v/BatteryLevel', payload: '1' }, /VIN/],
    ['payload not JSON', { topic: 'test/topic/TEST123/v/BatteryLevel', payload: '75,5' }, /not JSON/],
    ['an array value', { topic: 'test/topic/TEST123/v/BatteryLevel', payload: '[75]' }, /neither/],
    ['connectivity without Status', { topic: 'test/topic/TEST123/connectivity', payload: '{"ConnectionId":"c"}' }, /Status/],
    ['an unknown kind', { topic: 'test/topic/TEST123/x/BatteryLevel', payload: '1' }, /no kind/],
    ['too deep', { topic: 'test/topic/TEST123/v/BatteryLevel/more', payload: '1' }, /no kind/],
  ])('%s is bad', (_name, message, reason) => {
    const decoded = decode(message, mqtt);
    expect(decoded).toMatchObject({ kind: 'bad', reason: expect.stringMatching(reason) });
  });
});

describe('Redis dispatcher messages', () => {
  const redis = fixture<Record<string, { channel: string; payload: string }> & { namespace: string }>('redis-records');
  const ctx = connection(`redis://127.0.0.1:6379/${redis.namespace}`);
  const message = (name: string) => ({ topic: redis[name]!.channel, payload: redis[name]!.payload });

  it('maps a vehicle data record on <namespace>_V_{<VIN>} at its createdAt', () => {
    const frame = decode(message('vehicleData'), ctx);
    expect(readingsOf(frame)).toEqual([
      ['TEST123', 'location', { lat: 37.7749, lon: -122.4194 }, '2024-05-01T14:03:10.250Z'],
      ['TEST123', 'soc_pct', 75.5, '2024-05-01T14:03:10.250Z'],
      ['TEST123', 'odometer_km', 18138.82, '2024-05-01T14:03:10.250Z'],
    ]);
    // TimeToFullCharge is invalid but not a field Fleetwire maps: nothing was skipped that would have been used.
    expect(frame).not.toHaveProperty('notes');
    const invalidSoc = redis.vehicleData!.payload.replace('{"floatValue":75.5}', '{"invalid":true}');
    expect(decode({ topic: redis.vehicleData!.channel, payload: invalidSoc }, ctx)).toMatchObject({ notes: { invalidValues: 1 } });
  });

  it('reads the upstream record_test.go record (createdAt null) as bad: it has no time to observe it at', () => {
    expect(decode(message('upstreamRecord'), ctx)).toEqual({ kind: 'bad', reason: 'record has no valid createdAt' });
  });

  it('maps connectivity, and recognises alerts and errors by their channel', () => {
    expect(readingsOf(decode(message('connectivity'), ctx))).toEqual([['TEST123', 'connectivity_state', 'offline', '2024-05-01T14:09:58.120Z']]);
    expect(decode(message('alerts'), ctx)).toEqual({ kind: 'readings', devices: [], notes: { alerts: 2 } });
    expect(decode(message('errors'), ctx)).toEqual({ kind: 'readings', devices: [], notes: { errors: 1 } });
  });

  it.each([
    ['outside the namespace', { topic: 'tesla_V_{TEST123}', payload: '{}' }, /outside the namespace/],
    ['no VIN braces', { topic: 'test_namespace_V_TEST123', payload: '{}' }, /channel is not/],
    ['a record on the wrong channel', { topic: 'test_namespace_alerts_{TEST123}', payload: JSON.parse(JSON.stringify(redis.vehicleData!.payload)) as string }, /a V record where a alerts record/],
    ['another vehicle than the channel', { topic: 'test_namespace_V_{TEST124}', payload: redis.vehicleData!.payload }, /another vehicle/],
    ['protobuf bytes (transmit_decoded_records off)', { topic: 'test_namespace_V_{TEST123}', payload: '\n\u0007TEST123\u0012' }, /transmit_decoded_records/],
  ])('%s is bad', (_name, m, reason) => {
    expect(decode(m, ctx)).toMatchObject({ kind: 'bad', reason: expect.stringMatching(reason) });
  });
});

describe('subscriptions', () => {
  it('MQTT: QoS 1 on the four topic shapes, a client id of the connection, credentials only when given', () => {
    const plan = teslaFleetTelemetryAdapter.subscription({ ...connection('mqtt://broker.example:1883/fleet/tesla/'), credentials: { username: 'ft', password: 'secret' } });
    expect(plan).toEqual({
      broker: 'mqtt',
      key: 'mqtt:fleet/tesla',
      url: 'mqtt://broker.example:1883',
      username: 'ft',
      password: 'secret',
      clientId: 'fleetwire-7d0c1f6e-2b9a-4c1d-8e3f-5a6b7c8d9e01',
      topics: ['fleet/tesla/+/v/+', 'fleet/tesla/+/connectivity', 'fleet/tesla/+/alerts/+/current', 'fleet/tesla/+/errors/+'],
      qos: 1,
    });
    expect(plan.key).not.toContain('secret');
    expect(teslaFleetTelemetryAdapter.subscription(connection('mqtts://broker.example/t'))).not.toHaveProperty('username');
  });

  it('Redis: PSUBSCRIBE to every record type of the namespace, its glob characters escaped', () => {
    expect(teslaFleetTelemetryAdapter.subscription(connection('redis://127.0.0.1:6379/tesla'))).toEqual({
      broker: 'redis',
      key: 'redis:tesla',
      url: 'redis://127.0.0.1:6379',
      channels: [],
      patterns: ['tesla_V_{*}', 'tesla_connectivity_{*}', 'tesla_alerts_{*}', 'tesla_errors_{*}'],
    });
    const odd = teslaFleetTelemetryAdapter.subscription(connection('rediss://r.example:6380/fleet*%5B1%5D'));
    expect(odd).toMatchObject({ url: 'rediss://r.example:6380', patterns: expect.arrayContaining(['fleet\\*\\[1\\]_V_{*}']) });
  });

  it.each([
    ['https://broker.example/t', /mqtt\(s\):\/\/ or redis\(s\):\/\//],
    ['mqtt://broker.example:1883', /topic base/],
    ['mqtt://broker.example:1883/t/+', /must not contain/],
    ['redis://127.0.0.1:6379', /namespace/],
    ['redis://127.0.0.1:6379/a/b', /namespace/],
    ['mqtt://user:pw@broker.example/t', /must not carry credentials/],
    ['not a url', /not a URL/],
  ])('refuses %s as a permanent error', (baseUrl, message) => {
    try {
      teslaFleetTelemetryAdapter.subscription(connection(baseUrl));
      expect.unreachable();
    } catch (error) {
      expect(isProviderError(error) && error.errorClass).toBe('permanent');
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('pw');
    }
  });

  it('takes credentials {}, either field alone, and nothing else; options default to BatteryLevel', () => {
    const credentials = teslaFleetTelemetryContract.credentials;
    expect(credentials.safeParse({}).success).toBe(true);
    expect(credentials.safeParse({ username: 'u' }).success).toBe(true);
    expect(credentials.safeParse({ password: 'p' }).success).toBe(true);
    expect(credentials.safeParse({ token: 't' }).success).toBe(false);
    expect(credentials.safeParse({ username: '' }).success).toBe(false);
    expect(teslaFleetTelemetryContract.options.parse({})).toEqual({ socField: 'BatteryLevel' });
    expect(teslaFleetTelemetryContract.options.safeParse({ socField: 'Level' }).success).toBe(false);
  });
});
