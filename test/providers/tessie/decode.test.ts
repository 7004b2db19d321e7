/**
 * Recorded Fleet Telemetry records (fixtures written from the shapes in reference/provider-wire-formats.md §3b,
 * which follow Tessie's published sample, developer.tessie.com/reference/access-tesla-fleet-telemetry) replayed
 * through the Tessie adapter's decode, with exact expected readings; Tessie's connectivity, alerts and errors
 * messages (the protojson form of teslamotors/fleet-telemetry protos/vehicle_connectivity.proto, vehicle_alert.proto
 * and vehicle_error.proto, which Tessie relays); and frames that must come back `bad`.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DecodedFrame, SocketPlan } from '../../../src/providers/stream-adapter.ts';
import { tessieStreamAdapter } from '../../../src/providers/tessie/adapter.ts';
import { tessieContract } from '../../../src/providers/tessie/contract.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { context } from '../../support/stream-client.ts';

const vin = '5YJ3E1EA1KF000001';
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8');
const socket: SocketPlan = { key: vin, url: `wss://telemetry.test/${vin}`, headers: { authorization: 'Bearer t' } };
const receivedAtMs = Date.parse('2024-05-01T14:10:00Z');
/** These fixtures carry Soc; the option's default (BatteryLevel) is tested on its own below. */
const withSoc = { ...context('wss://streaming.tessie.com', { accessToken: 't' }, [vin]), options: { socField: 'Soc' } };
const decode = (frame: string, on: SocketPlan = socket, ctx = withSoc) => tessieStreamAdapter.decode(frame, on, new Map(), receivedAtMs, ctx);

function readingsOf(frame: DecodedFrame) {
  if (frame.kind !== 'readings') throw new Error(`expected readings, got ${JSON.stringify(frame)}`);
  expectValidReadings(frame.devices, { notAfterMs: Date.parse('2030-01-01T00:00:00Z') });
  return frame.devices;
}

/** The readings of a one-vehicle frame as [signal, value], all checked to carry `observedAt`. */
function valuesOf(frame: DecodedFrame, observedAt: string) {
  const devices = readingsOf(frame);
  expect(devices.map((d) => d.externalDeviceId)).toEqual([vin]);
  for (const reading of devices[0]!.readings) expect(reading.observedAt).toBe(observedAt);
  return devices[0]!.readings.map((r) => [r.signal, r.value]);
}

describe('fleet telemetry records', () => {
  it('maps string values, converting miles and mph, and ignores fields it does not map', () => {
    const frame = decode(fixture('record-strings'));
    expect(frame).not.toHaveProperty('resend');
    expect(valuesOf(frame, '2024-05-01T14:03:10.000Z')).toEqual([
      ['soc_pct', 76.5],
      ['location', { lat: 37.4925352, lon: -121.9447469 }],
      ['heading_deg', 81.639],
      ['odometer_km', 18138.82],
      ['range_km', 211.659],
      ['battery_temp_c', 41.5],
      ['charging_state', 'charging'],
      ['plugged_in', true],
      ['speed_kph', 50.292],
      ['ignition', true],
    ]);
  });

  it('maps typed values (prefer_typed) and keeps createdAt to the millisecond', () => {
    expect(valuesOf(decode(fixture('record-typed')), '2024-05-01T14:05:00.123Z')).toEqual([
      ['soc_pct', 55.25],
      ['odometer_km', 19314.542],
      ['speed_kph', 0],
      ['heading_deg', 270],
      ['range_km', 403.543],
      ['charging_state', 'not_charging'],
      ['plugged_in', false],
      ['ignition', false],
    ]);
  });

  it('marks a resent record', () => {
    const frame = decode(fixture('record-resend'));
    expect(frame).toMatchObject({ kind: 'readings', resend: true });
    expect(valuesOf(frame, '2024-05-01T14:03:10.000Z')).toEqual([
      ['soc_pct', 76.5],
      ['charging_state', 'charging'],
      ['plugged_in', true],
    ]);
  });

  it('skips invalid and unparseable values one by one; Unknown charge state says nothing about the cable', () => {
    expect(valuesOf(decode(fixture('record-invalid-values')), '2024-05-01T14:06:00.000Z')).toEqual([
      ['charging_state', 'unknown'],
      ['battery_temp_c', -12.5],
    ]);
  });

  it('reads a location string, Complete, reverse gear, and keeps the last of a repeated field', () => {
    expect(valuesOf(decode(fixture('record-location-string')), '2024-05-01T14:07:30.250Z')).toEqual([
      ['location', { lat: 37.412374, lon: -122.145867 }],
      ['charging_state', 'complete'],
      ['plugged_in', true],
      ['ignition', true],
      ['speed_kph', 8.047],
    ]);
  });

  it.each([
    ['DetailedChargeStateNoPower', 'not_charging', true],
    ['DetailedChargeStateStopped', 'not_charging', true],
    ['DetailedChargeStateStarting', 'charging', true],
    ['Charging', 'charging', true],
  ])('%s -> %s, plugged in %s', (state, charging, pluggedIn) => {
    const record = { data: [{ key: 'DetailedChargeState', value: { detailedChargeStateValue: state } }], createdAt: '2024-05-01T14:00:00Z', vin, isResend: false };
    expect(valuesOf(decode(JSON.stringify(record)), '2024-05-01T14:00:00.000Z')).toEqual([
      ['charging_state', charging],
      ['plugged_in', pluggedIn],
    ]);
  });

  it('gives no readings for a record of fields it does not map', () => {
    expect(decode(fixture('record-unmapped-only'))).toEqual({ kind: 'readings', devices: [] });
  });

  it('counts the values the vehicle marked invalid', () => {
    expect(decode(fixture('record-invalid-values'))).toMatchObject({ notes: { invalidValues: 1 } });
  });
});

describe('which field is soc_pct', () => {
  // Both fields, as in teslamotors/fleet-telemetry datastore/mqtt/mqtt_test.go (BatteryLevel as floatValue 75.5).
  const both = JSON.stringify({
    data: [
      { key: 'BatteryLevel', value: { floatValue: 75.5 } },
      { key: 'Soc', value: { stringValue: '74.900' } },
    ],
    createdAt: '2024-05-01T14:03:10Z',
    vin,
    isResend: false,
  });
  const withOptions = (options: unknown) => ({ ...withSoc, options: tessieContract.options.parse(options) });

  it('is BatteryLevel by default (Tesla documents it as the state of charge), Soc ignored', () => {
    expect(tessieContract.options.parse({})).toEqual({ socField: 'BatteryLevel' });
    expect(valuesOf(decode(both, socket, withOptions({})), '2024-05-01T14:03:10.000Z')).toEqual([['soc_pct', 75.5]]);
  });

  it('is Soc when the connection says so, BatteryLevel ignored', () => {
    expect(valuesOf(decode(both, socket, withOptions({ socField: 'Soc' })), '2024-05-01T14:03:10.000Z')).toEqual([['soc_pct', 74.9]]);
  });

  it('the option takes only the two field names', () => {
    expect(tessieContract.options.safeParse({ socField: 'soc' }).success).toBe(false);
    expect(tessieContract.options.safeParse({ socField: 'BatteryLevel', other: 1 }).success).toBe(false);
  });
});

describe("Tessie's messages other than data", () => {
  it('turns a connectivity record (protojson VehicleConnectivity) into connectivity_state, observed at createdAt', () => {
    const disconnected = { vin, connectionId: '9f7e5c1a-4f8e-4e43-9d5e-2b1f2e4c8a10', status: 'DISCONNECTED', createdAt: '2024-05-01T14:09:58Z', networkInterface: 'wifi' };
    expect(valuesOf(decode(JSON.stringify(disconnected)), '2024-05-01T14:09:58.000Z')).toEqual([['connectivity_state', 'offline']]);
    const connected = { ...disconnected, status: 'CONNECTED', createdAt: '2024-05-01T14:09:59.500Z' };
    expect(valuesOf(decode(JSON.stringify(connected)), '2024-05-01T14:09:59.500Z')).toEqual([['connectivity_state', 'online']]);
  });

  it('reads the MQTT dispatcher spelling too (ConnectionId, Status, CreatedAt), and UNKNOWN says nothing', () => {
    const frame = { ConnectionId: 'c1', Status: 'CONNECTED', CreatedAt: '2024-05-01T14:09:00Z' };
    expect(valuesOf(decode(JSON.stringify(frame)), '2024-05-01T14:09:00.000Z')).toEqual([['connectivity_state', 'online']]);
    expect(decode(JSON.stringify({ ...frame, Status: 'UNKNOWN' }))).toEqual({ kind: 'readings', devices: [] });
  });

  it('stamps a connectivity record without a usable time (a Go zero Timestamp is the epoch) with its arrival', () => {
    const frame = { vin, connectionId: 'c1', status: 'CONNECTED', createdAt: '1970-01-01T00:00:00Z', networkInterface: '' };
    expect(valuesOf(decode(JSON.stringify(frame)), new Date(receivedAtMs).toISOString())).toEqual([['connectivity_state', 'online']]);
  });

  it('recognises alerts and errors records: counted, no readings, not bad', () => {
    const alerts = {
      alerts: [
        { name: 'TestAlert1', audiences: ['Customer', 'Service'], startedAt: '2024-05-01T14:00:00Z', endedAt: null },
        { name: 'TestAlert2', audiences: ['ServiceFix'], startedAt: '2024-05-01T14:00:00Z', endedAt: '2024-05-01T14:01:00Z' },
      ],
      createdAt: '2024-05-01T14:01:00Z',
      vin,
    };
    expect(decode(JSON.stringify(alerts))).toEqual({ kind: 'readings', devices: [], notes: { alerts: 2 } });
    const errors = { errors: [{ createdAt: '2024-05-01T14:02:00Z', name: 'TestError1', tags: { tag1: 'value1' }, body: 'This is a test error' }], createdAt: '2024-05-01T14:02:00Z', vin };
    expect(decode(JSON.stringify(errors))).toEqual({ kind: 'readings', devices: [], notes: { errors: 1 } });
  });

  it('refuses a connectivity record of another vehicle than the socket', () => {
    const frame = { vin: '5YJ3E1EA1KF000002', connectionId: 'c1', status: 'CONNECTED', createdAt: '2024-05-01T14:09:00Z', networkInterface: '' };
    expect(decode(JSON.stringify(frame))).toMatchObject({ kind: 'bad', reason: expect.stringMatching(/another vehicle/) });
  });
});

describe('bad fleet telemetry frames', () => {
  const record = (patch: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(fixture('record-strings')), ...patch });
  const badFrames: [string, string, RegExp][] = [
    ['empty', '', /not JSON/],
    ['truncated', '{"data":[{"key":"Soc","value":{"stringValue":', /not JSON/],
    ['array', '[]', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['no data', '{}', /not a telemetry record/],
    ['a status without a connection id', '{"vin":"5YJ3E1EA1KF000001","Status":"CONNECTED"}', /not a telemetry record/],
    ['data not a list', record({ data: { Soc: 1 } }), /not a telemetry record/],
    ['no vin', record({ vin: undefined }), /no usable vin/],
    ['vin not a string', record({ vin: 42 }), /no usable vin/],
    ['another vehicle', record({ vin: '5YJ3E1EA1KF000002' }), /another vehicle/],
    ['createdAt not a time', record({ createdAt: 'yesterday' }), /createdAt/],
    ['createdAt with an offset', record({ createdAt: '2024-05-01T16:03:10+02:00' }), /createdAt/],
    ['createdAt not a real date', record({ createdAt: '2024-02-30T14:03:10Z' }), /createdAt/],
  ];

  it.each(badFrames)('%s is bad', (_name, frame, reason) => {
    const decoded = decode(frame);
    expect(decoded.kind).toBe('bad');
    expect(decoded.kind === 'bad' ? decoded.reason : '').toMatch(reason);
  });

  it('reads the upstream fixture (createdAt null) as bad on its own socket too', () => {
    expect(decode(fixture('record-no-created-at'), { ...socket, key: '42' })).toEqual({ kind: 'bad', reason: 'record has no valid createdAt' });
  });

  it('never throws, whatever arrives, and what it returns is always valid', () => {
    const value = fc.oneof(
      fc.record({ stringValue: fc.oneof(fc.string(), fc.double().map(String)) }),
      fc.record({ doubleValue: fc.oneof(fc.double(), fc.string()) }),
      fc.record({ intValue: fc.anything() }),
      fc.record({ locationValue: fc.oneof(fc.record({ latitude: fc.double(), longitude: fc.double() }), fc.anything()) }),
      fc.record({ detailedChargeStateValue: fc.oneof(fc.string(), fc.constantFrom('DetailedChargeStateCharging', 'Bogus')) }),
      fc.record({ shiftStateValue: fc.anything() }),
      fc.record({ invalid: fc.anything() }),
      fc.anything(),
    );
    const datum = fc.record({ key: fc.oneof(fc.constantFrom('Soc', 'Odometer', 'Location', 'GpsHeading', 'VehicleSpeed', 'EstBatteryRange', 'DetailedChargeState', 'ModuleTempMax', 'Gear'), fc.string()), value });
    const frames = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record({ data: fc.oneof(fc.array(datum), fc.anything()), createdAt: fc.oneof(fc.constant('2024-05-01T14:03:10Z'), fc.anything()), vin: fc.oneof(fc.constant(vin), fc.anything()), isResend: fc.anything() }, { requiredKeys: [] })
        .map((r) => JSON.stringify(r) ?? ''),
    );
    fc.assert(
      fc.property(frames, (frame) => {
        const decoded = decode(frame);
        expect(['readings', 'keepalive', 'bad']).toContain(decoded.kind);
        if (decoded.kind === 'readings') expectValidReadings(decoded.devices, { notAfterMs: Number.MAX_SAFE_INTEGER });
      }),
      { numRuns: 500 },
    );
  });
});
