/**
 * Recorded Traccar frames (fixtures written from the shapes in reference/provider-wire-formats.md §3a) replayed
 * through the adapter's decode, with exact expected readings; and frames that must come back `bad`, never thrown.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DecodedFrame, SocketPlan } from '../../../src/providers/stream-adapter.ts';
import { traccarStreamAdapter } from '../../../src/providers/traccar/adapter.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8');
const socket: SocketPlan = { key: 'api/socket', url: 'ws://traccar.test/api/socket?token=t', headers: {} };
const decode = (frame: string, session: Map<string, unknown>) => traccarStreamAdapter.decode(frame, socket, session, Date.now());

/** A session that has already seen the devices frame. */
function learnedSession(): Map<string, unknown> {
  const session = new Map<string, unknown>();
  expect(decode(fixture('devices'), session)).toEqual({ kind: 'readings', devices: [] });
  return session;
}

function readingsOf(frame: DecodedFrame) {
  if (frame.kind !== 'readings') throw new Error(`expected readings, got ${JSON.stringify(frame)}`);
  expectValidReadings(frame.devices, { notAfterMs: Date.parse('2030-01-01T00:00:00Z') });
  return frame.devices;
}

describe('traccar frames', () => {
  it('reads the keepalive', () => {
    expect(decode(fixture('keepalive'), new Map())).toEqual({ kind: 'keepalive' });
  });

  it('maps the opening positions frame to readings per uniqueId, with units converted and times in UTC', () => {
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
          { signal: 'soc_pct', value: 76, observedAt: at1 },
          { signal: 'odometer_km', value: 14500.12, observedAt: at1 },
          { signal: 'ignition', value: true, observedAt: at1 },
          { signal: 'charging_state', value: 'not_charging', observedAt: at1 },
        ],
      },
      {
        externalDeviceId: '860000000000002',
        readings: [
          { signal: 'location', value: { lat: 52.4862, lon: 13.4254 }, observedAt: at2 },
          { signal: 'speed_kph', value: 0, observedAt: at2 },
          { signal: 'heading_deg', value: 0, observedAt: at2 },
          { signal: 'soc_pct', value: 88.5, observedAt: at2 },
          // odometer, not totalDistance
          { signal: 'odometer_km', value: 20, observedAt: at2 },
          { signal: 'ignition', value: false, observedAt: at2 },
          { signal: 'charging_state', value: 'charging', observedAt: at2 },
        ],
      },
    ]);
  });

  it('reads the +0000 offset style and fractional seconds', () => {
    const devices = readingsOf(decode(fixture('position-update'), learnedSession()));
    expect(devices).toHaveLength(1);
    expect(devices[0]!.readings.map((r) => [r.signal, r.value, r.observedAt])).toEqual([
      ['location', { lat: 37.38301, lon: -122.05102 }, '2024-05-01T14:03:20.500Z'],
      ['speed_kph', 55.56, '2024-05-01T14:03:20.500Z'],
      ['heading_deg', 87.5, '2024-05-01T14:03:20.500Z'],
      ['soc_pct', 75.9, '2024-05-01T14:03:20.500Z'],
      ['odometer_km', 14500.276, '2024-05-01T14:03:20.500Z'],
      ['ignition', true, '2024-05-01T14:03:20.500Z'],
      ['charging_state', 'not_charging', '2024-05-01T14:03:20.500Z'],
    ]);
  });

  it('skips invalid fields one by one and keeps the rest of the position', () => {
    const devices = readingsOf(decode(fixture('position-invalid-fields'), learnedSession()));
    expect(devices).toEqual([
      { externalDeviceId: '860000000000001', readings: [{ signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T14:04:00.000Z' }] },
    ]);
  });

  it('drops the coordinates, speed and course of a position without a GPS fix, and keeps its attributes', () => {
    const devices = readingsOf(decode(fixture('position-no-fix'), learnedSession()));
    expect(devices).toEqual([
      {
        externalDeviceId: '860000000000002',
        readings: [
          { signal: 'soc_pct', value: 50, observedAt: '2024-05-01T14:10:00.000Z' },
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
    decode(fixture('devices'), session);
    expect(readingsOf(decode(fixture('position-update'), session))[0]!.externalDeviceId).toBe('860000000000001');
  });

  it('resolves positions carried in the same frame as the devices that name them', () => {
    const frame = JSON.stringify({ ...JSON.parse(fixture('devices')), ...JSON.parse(fixture('position-update')) });
    expect(readingsOf(decode(frame, new Map()))[0]!.externalDeviceId).toBe('860000000000001');
  });

  it('turns an events frame into no readings', () => {
    expect(decode(fixture('events'), learnedSession())).toEqual({ kind: 'readings', devices: [] });
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
        attributes: fc.oneof(fc.dictionary(fc.constantFrom('batteryLevel', 'odometer', 'ignition', 'charge'), fc.anything()), fc.anything()),
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
