/**
 * Traccar frames (fixtures built from traccar/traccar's decoders and AsyncSocket, each naming its source) replayed
 * through the adapter's decode, with exact expected readings: by default the tracker's own battery is
 * tracker_battery_pct and nothing is the traction battery; with options, the attributes the operator names map
 * with their units. And frames that must come back `bad`, never thrown.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DecodedFrame, SocketPlan } from '../../../src/providers/stream-adapter.ts';
import { traccarStreamAdapter } from '../../../src/providers/traccar/adapter.ts';
import { decodeTraccarFrame } from '../../../src/providers/traccar/decode.ts';
import { learnDevices } from '../../../src/providers/traccar/device-ids.ts';
import { attributeSources, traccarOptionsSchema, type TraccarOptionsInput } from '../../../src/providers/traccar/options.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { frameText, restBody } from './fixtures.ts';

const fixture = frameText;
const socket: SocketPlan = { key: 'api/socket', url: 'ws://traccar.test/api/socket?token=t', headers: {} };
const decode = (frame: string, session: Map<string, unknown>) => traccarStreamAdapter.decode(frame, socket, session, Date.now());
/** Decodes as a connection with these options does. */
const decodeWith = (options: TraccarOptionsInput, frame: string, session = learnedSession()) =>
  decodeTraccarFrame(frame, session, attributeSources(traccarOptionsSchema.parse(options)));

/** A session that has learned the devices GET /api/devices lists, as prepare does. */
function learnedSession(): Map<string, unknown> {
  const session = new Map<string, unknown>();
  learnDevices(session, restBody('devices') as unknown[]);
  return session;
}

function readingsOf(frame: DecodedFrame) {
  if (frame.kind !== 'readings') throw new Error(`expected readings, got ${JSON.stringify(frame)}`);
  expectValidReadings(frame.devices, { notAfterMs: Date.parse('2030-01-01T00:00:00Z') });
  return frame.devices;
}

const signalsOf = (frame: DecodedFrame) => readingsOf(frame).flatMap((d) => d.readings.map((r) => r.signal));

describe('traccar frames, default options', () => {
  it('reads the keepalive', () => {
    expect(decode(fixture('keepalive'), new Map())).toEqual({ kind: 'keepalive' });
  });

  it('maps the opening frame per uniqueId: the tracker battery as tracker_battery_pct, no state of charge, no charging state', () => {
    const devices = readingsOf(decode(fixture('positions-on-open'), learnedSession()));
    const at1 = '2024-05-01T14:03:10.000Z';
    const at2 = '2024-05-01T11:40:00.000Z';
    expect(devices).toEqual([
      {
        externalDeviceId: '860000000000001',
        readings: [
          { signal: 'location', value: { lat: 37.38229, lon: -122.05264 }, observedAt: at1 },
          { signal: 'speed_kph', value: 50.189, observedAt: at1 },
          { signal: 'heading_deg', value: 90, observedAt: at1 },
          // The Traccar Client phone's battery (OsmAnd `batt`), not the van's.
          { signal: 'tracker_battery_pct', value: 76, observedAt: at1 },
          // odometer (m), not totalDistance
          { signal: 'odometer_km', value: 14500.12, observedAt: at1 },
          { signal: 'ignition', value: true, observedAt: at1 },
        ],
      },
      {
        externalDeviceId: '860000000000002',
        readings: [
          { signal: 'location', value: { lat: 52.4862, lon: 13.4254 }, observedAt: at2 },
          { signal: 'speed_kph', value: 0, observedAt: at2 },
          { signal: 'heading_deg', value: 0, observedAt: at2 },
          // Teltonika io113: the tracker's internal battery. hybridBatteryLevel maps only if the options say so.
          { signal: 'tracker_battery_pct', value: 88, observedAt: at2 },
          { signal: 'odometer_km', value: 20, observedAt: at2 },
          { signal: 'ignition', value: false, observedAt: at2 },
        ],
      },
    ]);
  });

  it('reads the +0000 offset style and fractional seconds; a phone on its charger is not a charging vehicle', () => {
    const devices = readingsOf(decode(fixture('position-update'), learnedSession()));
    expect(devices).toHaveLength(1);
    expect(devices[0]!.readings.map((r) => [r.signal, r.value, r.observedAt])).toEqual([
      ['location', { lat: 37.38301, lon: -122.05102 }, '2024-05-01T14:03:20.500Z'],
      ['speed_kph', 55.56, '2024-05-01T14:03:20.500Z'],
      ['heading_deg', 87.5, '2024-05-01T14:03:20.500Z'],
      ['tracker_battery_pct', 75, '2024-05-01T14:03:20.500Z'],
      ['odometer_km', 14500.276, '2024-05-01T14:03:20.500Z'],
      ['ignition', true, '2024-05-01T14:03:20.500Z'],
    ]);
  });

  it("maps a Traccar Client JSON position: battery.level x 100 is the phone's battery, is_charging is nothing", () => {
    const devices = readingsOf(decode(fixture('position-osmand-json'), learnedSession()));
    const at = '2021-07-21T08:06:34.444Z';
    expect(devices).toEqual([
      {
        externalDeviceId: '860000000000001',
        readings: [
          { signal: 'location', value: { lat: -6.1148096, lon: 106.6837015 }, observedAt: at },
          { signal: 'speed_kph', value: 67.212, observedAt: at },
          { signal: 'heading_deg', value: 63, observedAt: at },
          { signal: 'tracker_battery_pct', value: 79, observedAt: at },
          { signal: 'odometer_km', value: 0, observedAt: at },
        ],
      },
    ]);
  });

  it('maps nothing of an EV but the tracker battery, the odometer and the ignition without options', () => {
    expect(signalsOf(decode(fixture('position-ev-attributes'), learnedSession()))).toEqual([
      'location',
      'speed_kph',
      'heading_deg',
      'tracker_battery_pct',
      'odometer_km',
      'ignition',
    ]);
  });

  it('skips invalid fields one by one, and reads nothing from charge', () => {
    expect(decode(fixture('position-invalid-fields'), learnedSession())).toEqual({ kind: 'readings', devices: [] });
  });

  it('drops the coordinates, speed and course of a position without a GPS fix, and keeps its attributes', () => {
    const devices = readingsOf(decode(fixture('position-no-fix'), learnedSession()));
    expect(devices).toEqual([
      {
        externalDeviceId: '860000000000002',
        readings: [
          { signal: 'tracker_battery_pct', value: 50, observedAt: '2024-05-01T14:10:00.000Z' },
          { signal: 'ignition', value: false, observedAt: '2024-05-01T14:10:00.000Z' },
        ],
      },
    ]);
  });

  it('counts a position of a device it does not know yet as bad, and leaves it out of a frame that has other readings', () => {
    const session = learnedSession();
    const bad = decode(fixture('position-unknown-device'), session);
    expect(bad.kind).toBe('bad');
    expect(bad.kind === 'bad' && bad.reason).toMatch(/deviceId 99/);
    const devices = readingsOf(decode(fixture('positions-mixed-devices'), session));
    expect(devices.map((d) => d.externalDeviceId)).toEqual(['860000000000001']);
    expect(devices[0]!.readings.map((r) => r.signal)).toEqual(['location', 'speed_kph', 'heading_deg']);
  });

  it('learns ids from a devices frame (no prepare) and resolves positions after it', () => {
    const session = new Map<string, unknown>();
    expect(decode(fixture('position-update'), session).kind).toBe('bad');
    expect(decode(fixture('device-update'), session)).toEqual({ kind: 'readings', devices: [] });
    expect(readingsOf(decode(fixture('position-update'), session))[0]!.externalDeviceId).toBe('860000000000001');
  });

  it('resolves positions carried in the same frame as the devices that name them', () => {
    const frame = JSON.stringify({ ...JSON.parse(fixture('device-update')), ...JSON.parse(fixture('position-update')) });
    expect(readingsOf(decode(frame, new Map()))[0]!.externalDeviceId).toBe('860000000000001');
  });

  it('turns an events frame into no readings', () => {
    expect(decode(fixture('events'), learnedSession())).toEqual({ kind: 'readings', devices: [] });
  });
});

describe('traccar frames, with attribute options', () => {
  it('maps the attributes the options name, with their units and scales, and turns a default off with null', () => {
    const options: TraccarOptionsInput = {
      attributes: {
        soc_pct: { attribute: 'evSocFraction', unit: 'fraction' },
        charging_state: { attribute: 'evChargeState', values: { charging: [1], not_charging: [0], complete: [2] } },
        range_km: { attribute: 'evRangeM' },
        charge_power_kw: { attribute: 'evChargePowerW', unit: 'W' },
        battery_temp_c: { attribute: 'io1001', scale: 0.1 },
        plugged_in: { attribute: 'evPlug' },
        tracker_battery_pct: null,
      },
    };
    const at = '2024-05-01T14:20:00.000Z';
    expect(readingsOf(decodeWith(options, fixture('position-ev-attributes')))).toEqual([
      {
        externalDeviceId: '860000000000002',
        readings: [
          { signal: 'location', value: { lat: 52.4871, lon: 13.4261 }, observedAt: at },
          { signal: 'speed_kph', value: 0, observedAt: at },
          { signal: 'heading_deg', value: 180, observedAt: at },
          { signal: 'soc_pct', value: 41.25, observedAt: at },
          { signal: 'odometer_km', value: 20.15, observedAt: at },
          { signal: 'range_km', value: 131.5, observedAt: at },
          { signal: 'charge_power_kw', value: 7.36, observedAt: at },
          { signal: 'battery_temp_c', value: 28.7, observedAt: at },
          { signal: 'charging_state', value: 'charging', observedAt: at },
          { signal: 'plugged_in', value: true, observedAt: at },
          { signal: 'ignition', value: false, observedAt: at },
        ],
      },
    ]);
  });

  it("maps a Teltonika OBD tracker's hybridBatteryLevel as the state of charge, and the other device's positions still have none", () => {
    const devices = readingsOf(decodeWith({ attributes: { soc_pct: { attribute: 'hybridBatteryLevel' } } }, fixture('positions-on-open')));
    const soc = devices.map((d) => [d.externalDeviceId, d.readings.find((r) => r.signal === 'soc_pct')?.value]);
    expect(soc).toEqual([
      ['860000000000001', undefined],
      ['860000000000002', 64],
    ]);
    // The tracker's own battery still maps beside it.
    expect(devices[1]!.readings.find((r) => r.signal === 'tracker_battery_pct')?.value).toBe(88);
  });

  it('reads a charging attribute without values as a boolean or 0/1, and skips what it cannot read', () => {
    const position = (value: unknown) => JSON.stringify({ positions: [{ deviceId: 7, fixTime: '2024-05-01T14:00:00.000+00:00', attributes: { evCharging: value } }] });
    const charging = (value: unknown) => {
      const frame = decodeWith({ attributes: { charging_state: { attribute: 'evCharging' } } }, position(value));
      return frame.kind === 'readings' ? frame.devices[0]?.readings.find((r) => r.signal === 'charging_state')?.value : frame.kind;
    };
    expect([true, false, 1, 0, 2, 'yes', null].map(charging)).toEqual(['charging', 'not_charging', 'charging', 'not_charging', undefined, undefined, undefined]);
  });

  it('reads distances in metres by default, and in kilometres or miles when told', () => {
    const position = JSON.stringify({ positions: [{ deviceId: 7, fixTime: '2024-05-01T14:00:00.000+00:00', attributes: { odometer: 1000, obdOdometer: 12345678, dash: 100 } }] });
    const odometer = (options: TraccarOptionsInput) => readingsOf(decodeWith(options, position))[0]?.readings.find((r) => r.signal === 'odometer_km')?.value;
    expect(odometer({})).toBe(1);
    expect(odometer({ attributes: { odometer_km: { attribute: 'obdOdometer' } } })).toBe(12345.678);
    expect(odometer({ attributes: { odometer_km: { attribute: 'dash', unit: 'km' } } })).toBe(100);
    expect(odometer({ attributes: { odometer_km: { attribute: 'dash', unit: 'mi' } } })).toBe(160.934);
    expect(odometer({ attributes: { odometer_km: null } })).toBeUndefined();
  });

  it('maps batteryLevel as the state of charge only when told to, for a device whose batteryLevel is the pack', () => {
    const options: TraccarOptionsInput = { attributes: { soc_pct: { attribute: 'batteryLevel' }, tracker_battery_pct: null } };
    const readings = readingsOf(decodeWith(options, fixture('position-no-fix')))[0]!.readings;
    expect(readings.map((r) => [r.signal, r.value])).toEqual([
      ['soc_pct', 50],
      ['ignition', false],
    ]);
  });

  it('skips a mapped value outside the signal catalogue, and never reads inherited properties', () => {
    const position = JSON.stringify({ positions: [{ deviceId: 7, fixTime: '2024-05-01T14:00:00.000+00:00', attributes: { evSoc: 1.5 } }] });
    expect(decodeWith({ attributes: { soc_pct: { attribute: 'evSoc', unit: 'fraction' } } }, position)).toEqual({ kind: 'readings', devices: [] });
    expect(decodeWith({ attributes: { soc_pct: { attribute: 'constructor' }, plugged_in: { attribute: 'toString' } } }, position)).toEqual({ kind: 'readings', devices: [] });
  });

  it('decodes through the adapter with the options its prepare was given', async () => {
    const session = learnedSession();
    // prepare keeps the sources before it fetches the device list; the fetch fails here, the sources stay.
    const context = { baseUrl: 'http://127.0.0.1:1', credentials: { token: 't' }, options: { attributes: { soc_pct: { attribute: 'hybridBatteryLevel' } } }, boundDevices: [], signal: new AbortController().signal };
    await expect(traccarStreamAdapter.prepare!(context, socket, session)).rejects.toThrow();
    expect(signalsOf(decode(fixture('positions-on-open'), session))).toContain('soc_pct');
    expect(signalsOf(decode(fixture('positions-on-open'), learnedSession()))).not.toContain('soc_pct');
  });
});

describe('bad traccar frames', () => {
  const badFrames: [string, RegExp][] = [
    ['', /not JSON/],
    ['{"positions":[{"deviceId":', /not JSON/],
    ['null', /not a JSON object/],
    ['[]', /not a JSON object/],
    ['"{}"', /not a JSON object/],
    ['42', /not a JSON object/],
    ['{"logs":[]}', /unexpected frame/],
    ['{"hello":"world"}', /unexpected frame/],
    ['{"positions":{}}', /not an array/],
    ['{"devices":"7"}', /not an array/],
    ['{"positions":[null, 3, "x"]}', /3 of 3 positions skipped/],
    ['{"positions":[{"id":1}]}', /no numeric deviceId/],
    ['{"positions":[{"deviceId":7,"latitude":1,"longitude":2}]}', /no valid fixTime/],
    ['{"positions":[{"deviceId":7,"fixTime":"2024-05-01T14:03:10"}]}', /no valid fixTime/],
    ['{"positions":[{"deviceId":7,"fixTime":"2024-02-30T14:03:10Z"}]}', /no valid fixTime/],
  ];

  it.each(badFrames)('%s is bad', (frame, reason) => {
    const decoded = decode(frame, learnedSession());
    expect(decoded.kind).toBe('bad');
    expect(decoded.kind === 'bad' ? decoded.reason : '').toMatch(reason);
  });

  it('never throws, whatever arrives, and what it returns is always valid', () => {
    const session = learnedSession();
    const position = fc.record(
      {
        deviceId: fc.oneof(fc.constantFrom(7, 8, 99), fc.anything()),
        fixTime: fc.oneof(fc.constant('2024-05-01T14:03:10.000+00:00'), fc.string(), fc.anything()),
        valid: fc.anything(),
        latitude: fc.oneof(fc.double(), fc.anything()),
        longitude: fc.oneof(fc.double(), fc.anything()),
        speed: fc.oneof(fc.double(), fc.anything()),
        course: fc.oneof(fc.double(), fc.anything()),
        attributes: fc.oneof(fc.dictionary(fc.constantFrom('batteryLevel', 'odometer', 'ignition', 'charge', 'evSoc'), fc.anything()), fc.anything()),
      },
      { requiredKeys: [] },
    );
    const frames = fc.oneof(
      fc.string(),
      fc.json(),
      fc.array(position).map((positions) => JSON.stringify({ positions })),
      fc.anything().map((devices) => JSON.stringify({ devices }) ?? ''),
    );
    fc.assert(
      fc.property(frames, (frame) => {
        const decoded = decode(frame, session);
        expect(['readings', 'keepalive', 'bad']).toContain(decoded.kind);
        if (decoded.kind === 'readings') expectValidReadings(decoded.devices, { notAfterMs: Number.MAX_SAFE_INTEGER });
      }),
      { numRuns: 500 },
    );
  });
});
