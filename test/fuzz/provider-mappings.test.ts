/**
 * Every provider mapping and stream decoder under hostile wire input (DESIGN §6; STYLE: "a bad frame returns
 * nothing and processing goes on"). Inputs are built from each provider's wire shapes with every field mutated
 * (missing, null, wrong type, extreme numbers, impossible or out-of-range dates, unknown enum values, random
 * JSON), plus fully random input. For each function:
 *
 * - it never throws;
 * - what it returns can go to ingest as it is: each device id is one ingest and bindings accept, each reading has
 *   a catalogued signal, a value of the signal's type and an observed time that ingest reads back to the same
 *   instant, so a bad value is rejected on its own and never makes a whole update malformed;
 * - Traccar and Tesla (which check bounds themselves) return only valid readings; Samsara and Geotab (which leave
 *   bounds to ingest, so the operator sees the rejection) return readings valid but for bounds;
 * - what it cannot read is skipped and counted, or reported `bad`, as its contract says;
 * - it is pure: the same input gives the same output, and the input is left as it was.
 *
 * Runs are seeded; a failure prints fast-check's seed and path.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chargingStates, checkSignalValue, connectivityStates, signalNames, type SignalName } from '../../src/canonical/signals.ts';
import { canonicalUpdateSchema, parseTimestamp, updateEnvelopeSchema, type CanonicalReading } from '../../src/canonical/update.ts';
import { mapChargeEvents, mapDeviceStatusInfos, mapLogRecords, mapStatusData } from '../../src/providers/geotab/mapping.ts';
import { diagnosticIds } from '../../src/providers/geotab/wire.ts';
import type { DeviceReadings } from '../../src/providers/poll-adapter.ts';
import { mapVehicleStats } from '../../src/providers/samsara/mapping.ts';
import type { DecodedFrame } from '../../src/providers/stream-adapter.ts';
import { decodeMqttMessage, decodeRedisMessage } from '../../src/providers/tesla-fleet-telemetry/decode.ts';
import { decodeTelemetryRecord } from '../../src/providers/tesla-fleet-telemetry/records.ts';
import { detailedChargeStates, shiftStates, socFields, telemetryFields } from '../../src/providers/tesla-fleet-telemetry/wire.ts';
import { decodeTraccarFrame } from '../../src/providers/traccar/decode.ts';
import { attributeSources, defaultAttributeSources, traccarOptionsSchema } from '../../src/providers/traccar/options.ts';
import {
  anyJsonText,
  edgeTimestamps,
  extremeNumber,
  hostileValue,
  jsonText,
  oddText,
  randomTimestamp,
  rawNumber,
  spelledInstant,
  toJsonText,
  wireList,
  wireRecord,
} from '../support/hostile-input.ts';
import { expectValidReadings } from '../support/reading-invariants.ts';

const seed = 20_261_128;
const runs = (numRuns: number): fc.Parameters<any> => ({ seed, numRuns });
/** Mappings have no clock: a far-future reading is ingest's to reject. Only real, re-readable instants are asked for. */
const latestInstant = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const now = Math.floor(Date.now() / 1000) * 1000;

// ---------------------------------------------------------------------------------------------------------------
// What every mapping's output must satisfy.

const numberSignals: readonly SignalName[] = ['soc_pct', 'odometer_km', 'heading_deg', 'speed_kph', 'range_km', 'battery_temp_c', 'charge_power_kw', 'tracker_battery_pct'];

/** The value has the signal's type (bounds aside): a finite number, a {lat, lon} of finite numbers, an enum member, a boolean. */
function wellTyped(signal: SignalName, value: unknown): boolean {
  if (numberSignals.includes(signal)) return typeof value === 'number' && Number.isFinite(value);
  if (signal === 'location') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const keys = Object.keys(value).sort();
    const { lat, lon } = value as { lat: unknown; lon: unknown };
    return keys.join() === 'lat,lon' && typeof lat === 'number' && Number.isFinite(lat) && typeof lon === 'number' && Number.isFinite(lon);
  }
  if (signal === 'charging_state') return (chargingStates as readonly unknown[]).includes(value);
  if (signal === 'connectivity_state') return (connectivityStates as readonly unknown[]).includes(value);
  return typeof value === 'boolean';
}

/**
 * Output ingest can judge reading by reading. `bounds: 'checked'`: every reading is valid (the shared invariants
 * of every canonical reading). `bounds: 'ingest'`: readings may be out of bounds, but only out of bounds.
 */
function expectIngestible(devices: readonly DeviceReadings[], bounds: 'checked' | 'ingest'): void {
  const ids = devices.map((d) => d.externalDeviceId);
  expect(new Set(ids).size, 'one entry per device').toBe(ids.length);
  for (const device of devices) {
    expect(device.readings.length, `${device.externalDeviceId}: a device is listed only with readings`).toBeGreaterThan(0);
    const update = {
      workspaceId: '3f6d0c84-1d2b-4c6e-9a1e-0f4b2c8d9e10',
      provider: 'fuzz',
      connectionId: '9a1e3f6d-0c84-4d2b-8c6e-0f4b2c8d9e10',
      externalDeviceId: device.externalDeviceId,
      source: 'poll',
      receivedAt: new Date(now).toISOString(),
      readings: device.readings,
    };
    // The update the poll runner or the stream runtime builds from this is never malformed as a whole.
    const shape = updateEnvelopeSchema.safeParse(update);
    expect(shape.success ? 'ok' : shape.error.issues[0]?.path.join('.'), `update of ${JSON.stringify(device.externalDeviceId).slice(0, 80)}`).toBe('ok');
    for (const reading of device.readings) {
      const where = `${reading.signal} ${JSON.stringify(reading.value)} at ${reading.observedAt}`;
      expect(signalNames, where).toContain(reading.signal);
      expect(wellTyped(reading.signal, reading.value), `${where}: well typed`).toBe(true);
      expect(reading.observedAt, where).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      const ms = parseTimestamp(reading.observedAt);
      expect(ms !== undefined && new Date(ms).toISOString(), `${where}: observedAt reads back`).toBe(reading.observedAt);
      const check = checkSignalValue(reading.signal, reading.value);
      if (bounds === 'checked') expect(check.ok ? 'ok' : check.detail, where).toBe('ok');
      else if (!check.ok) expect(check.reason, where).toBe('invalid_value');
    }
    if (bounds === 'checked') expect(canonicalUpdateSchema.safeParse(update).success, 'a canonical update').toBe(true);
  }
  // The shared invariants of every canonical reading, on the readings in bounds. Device ids were held to what
  // ingest accepts by the envelope check above; the helper sees placeholder ids.
  const inBounds = devices.map((d, i) => ({ externalDeviceId: `device-${i}`, readings: d.readings.filter((r) => checkSignalValue(r.signal, r.value).ok) }));
  expectValidReadings(inBounds, { notAfterMs: latestInstant });
}

/** The same input gives the same output, and the input is untouched. */
function expectPure<T>(input: unknown, map: () => T): T {
  const before = fc.stringify(input);
  const first = map();
  expect(fc.stringify(input), 'the input is left as it was').toBe(before);
  expect(map(), 'the same input gives the same output').toEqual(first);
  return first;
}

const readingCount = (devices: readonly DeviceReadings[]) => devices.reduce((n, d) => n + d.readings.length, 0);

// ---------------------------------------------------------------------------------------------------------------
// Shared wire-value arbitraries.

/** A number: mostly in `min..max`, sometimes at or past its ends, sometimes extreme (±Infinity, NaN, -0, 1e308). */
function wireNumber(min: number, max: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.double({ min, max, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom(min, max, min - 1e-9 * Math.max(1, Math.abs(min)), max * 1.000001 + 1e-9, -0) },
    { weight: 1, arbitrary: extremeNumber },
  );
}

/** Times as a provider might send them: mostly recent, in any RFC 3339 spelling; some at or past the edges; some junk. */
function wireTime(extra: fc.Arbitrary<string> = fc.constant('2024-05-01T14:03:10Z'), recentWeight = 8): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: recentWeight, arbitrary: fc.integer({ min: 0, max: 30 * 86_400 }).chain((s) => spelledInstant(now - s * 1000)) },
    { weight: 1, arbitrary: fc.constantFrom(...edgeTimestamps.valid) },
    { weight: 2, arbitrary: fc.constantFrom(...edgeTimestamps.outOfRange) },
    { weight: 1, arbitrary: fc.constantFrom(...edgeTimestamps.invalid) },
    { weight: 1, arbitrary: randomTimestamp },
    { weight: 1, arbitrary: extra },
  );
}

/** Device ids: a few real-looking ones that repeat (so entities merge), and hostile text. */
const deviceId = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('b28', 'b29', '212014918732717', 'dev-1') }, { weight: 1, arbitrary: oddText });

// ---------------------------------------------------------------------------------------------------------------
// Samsara (poll): vehicle stats feed and history items.

const samsaraTimed = (min: number, max: number) => wireRecord({ time: wireTime(), value: wireNumber(min, max) });
const samsaraGps = wireRecord({
  time: wireTime(),
  latitude: wireNumber(-90, 90),
  longitude: wireNumber(-180, 180),
  headingDegrees: wireNumber(0, 360),
  speedMilesPerHour: wireNumber(0, 248),
  isEcuSpeed: fc.boolean(),
  address: wireRecord({ id: oddText, name: oddText }),
  reverseGeo: wireRecord({ formattedLocation: oddText }),
  decorations: fc.dictionary(oddText, hostileValue, { maxKeys: 2 }),
});
const samsaraItem = wireRecord({
  id: deviceId,
  name: oddText,
  externalIds: fc.dictionary(oddText, oddText, { maxKeys: 2 }),
  gps: wireList(samsaraGps),
  obdOdometerMeters: wireList(samsaraTimed(0, 1e10)),
  gpsOdometerMeters: wireList(samsaraTimed(0, 1e10)),
  engineStates: wireList(wireRecord({ time: wireTime(), value: fc.oneof(fc.constantFrom('On', 'Off', 'Idle'), fc.constantFrom('on', 'Unknown', ''), oddText) })),
  evStateOfChargeMilliPercent: wireList(samsaraTimed(0, 100_000)),
  evChargingStatus: wireList(wireRecord({ time: wireTime(), value: fc.oneof(fc.constantFrom(0, 1, 2), fc.integer({ min: -2, max: 9 }), extremeNumber) })),
  evAverageBatteryTemperatureMilliCelsius: wireList(samsaraTimed(-60_000, 100_000)),
});

describe('samsara mapVehicleStats', () => {
  it('never throws; maps to readings valid but for bounds, skipping what it cannot read', () => {
    const items = fc.array(fc.oneof({ weight: 8, arbitrary: samsaraItem }, { weight: 1, arbitrary: hostileValue }), { maxLength: 5 });
    fc.assert(
      fc.property(items, (list) => {
        const mapped = expectPure(list, () => mapVehicleStats(list));
        expect(Number.isInteger(mapped.skipped) && mapped.skipped >= 0).toBe(true);
        expectIngestible(mapped.devices, 'ingest');
        // An item that is not an object or has no usable id is one skip, at least.
        const unusable = list.filter((item) => typeof item !== 'object' || item === null || Array.isArray(item) || updateEnvelopeSchema.shape.externalDeviceId.safeParse((item as { id?: unknown }).id).success === false).length;
        expect(mapped.skipped).toBeGreaterThanOrEqual(unusable);
      }),
      runs(300),
    );
  });

  it('maps every entry of clean items to valid readings, none skipped', () => {
    const time = fc.integer({ min: 0, max: 86_400 }).chain((s) => spelledInstant(now - s * 1000));
    const timed = (min: number, max: number) => fc.record({ time, value: fc.double({ min, max, noNaN: true }) });
    const gps = fc.record(
      {
        time,
        latitude: fc.double({ min: -90, max: 90, noNaN: true }),
        longitude: fc.double({ min: -180, max: 180, noNaN: true }),
        headingDegrees: fc.double({ min: 0, max: 360, noNaN: true }),
        speedMilesPerHour: fc.double({ min: 0, max: 248, noNaN: true }),
      },
      { requiredKeys: ['time', 'latitude', 'longitude'] },
    );
    const item = fc.record(
      {
        id: fc.constantFrom('212014918732717', '212014918732718'),
        gps: fc.array(gps, { maxLength: 3 }),
        obdOdometerMeters: fc.array(timed(0, 1e10), { maxLength: 2 }),
        gpsOdometerMeters: fc.array(timed(0, 1e10), { maxLength: 2 }),
        engineStates: fc.array(fc.record({ time, value: fc.constantFrom('On', 'Off', 'Idle') }), { maxLength: 2 }),
        evStateOfChargeMilliPercent: fc.array(timed(0, 100_000), { maxLength: 2 }),
        evChargingStatus: fc.array(fc.record({ time, value: fc.constantFrom(0, 1, 2) }), { maxLength: 2 }),
        evAverageBatteryTemperatureMilliCelsius: fc.array(timed(-60_000, 100_000), { maxLength: 2 }),
      },
      { requiredKeys: ['id'] },
    );
    const knownObd = fc.subarray(['212014918732717', '212014918732718']);
    fc.assert(
      fc.property(fc.array(item, { maxLength: 4 }), knownObd, (items, known) => {
        const { devices, skipped, obdOdometerVehicles } = mapVehicleStats(items, { obdOdometerVehicles: new Set(known) });
        expect(skipped).toBe(0);
        expectValidReadings(devices);
        expectIngestible(devices, 'checked');
        // OBD odometers win over GPS ones per vehicle: a vehicle with OBD entries in any of its items on the page, or
        // known from earlier pages, maps no GPS odometer at all.
        const obdHere = new Set(items.filter((i) => (i.obdOdometerMeters?.length ?? 0) > 0).map((i) => i.id));
        expect(new Set(obdOdometerVehicles)).toEqual(obdHere);
        const obd = new Set([...obdHere, ...known]);
        // Each gps point gives a location and its optional heading and speed.
        const expected = items.reduce((n, i) => {
          const gpsReadings = (i.gps ?? []).reduce((m, p) => m + 1 + (p.headingDegrees === undefined ? 0 : 1) + (p.speedMilesPerHour === undefined ? 0 : 1), 0);
          const odometers = (obd.has(i.id) ? (i.obdOdometerMeters ?? []) : (i.gpsOdometerMeters ?? [])).length;
          const others = [i.engineStates, i.evStateOfChargeMilliPercent, i.evChargingStatus, i.evAverageBatteryTemperatureMilliCelsius].reduce((m, l) => m + (l?.length ?? 0), 0);
          return n + gpsReadings + odometers + others;
        }, 0);
        expect(readingCount(devices)).toBe(expected);
      }),
      runs(200),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Geotab (poll): StatusData, LogRecord, DeviceStatusInfo and ChargeEvent entities (MyGeotab API reference shapes).

/** MyGeotab times: UTC with 3 or 7 digits, sometimes without a zone, and .NET's MinValue for "never". */
const geotabTime = wireTime(
  fc.oneof(
    fc.constantFrom('0001-01-01T00:00:00', '0001-01-01T00:00:00.0000000Z', '2024-05-01T14:03:05.1234567Z', '2024-05-01T14:03:05', '2024-05-01T14:03:05+0000', '2050-01-01T00:00:00.000Z'),
    fc.integer({ min: 0, max: 86_400 }).map((s) => new Date(now - s * 1000).toISOString().replace('Z', '')),
  ),
  16,
);
const geotabRef = (id: fc.Arbitrary<string>) => fc.oneof({ weight: 8, arbitrary: wireRecord({ id }) }, { weight: 1, arbitrary: fc.constantFrom('b28', { id: '' }, { id: 28 }) });
/** Five or more fields per entity: mutate each one less often, or almost no entity would be readable. */
const geotabMutation = { good: 16 };
const knownDiagnostics = Object.values(diagnosticIds);
const diagnosticId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...knownDiagnostics) },
  { weight: 2, arbitrary: fc.constantFrom(...knownDiagnostics.map((id) => id.toLowerCase()), ...knownDiagnostics.map((id) => id.toUpperCase())) },
  { weight: 1, arbitrary: fc.constantFrom('DiagnosticDeviceVoltageId', 'DiagnosticEngineSpeedId', 'DiagnosticStateOfChargeId ', '') },
  { weight: 1, arbitrary: oddText },
);
const statusData = wireRecord({
  id: oddText,
  dateTime: geotabTime,
  data: fc.oneof(fc.integer({ min: -3, max: 3 }), wireNumber(-100_000, 10_000_000)),
  device: geotabRef(deviceId),
  diagnostic: geotabRef(diagnosticId),
}, geotabMutation);
const logRecord = wireRecord({
  id: oddText,
  dateTime: geotabTime,
  latitude: wireNumber(-90, 90),
  longitude: wireNumber(-180, 180),
  speed: wireNumber(0, 400),
  device: geotabRef(deviceId),
}, geotabMutation);
const deviceStatusInfo = wireRecord({
  id: oddText,
  bearing: wireNumber(0, 360),
  dateTime: geotabTime,
  device: geotabRef(deviceId),
  latitude: wireNumber(-90, 90),
  longitude: wireNumber(-180, 180),
  speed: wireNumber(0, 400),
  isDeviceCommunicating: fc.boolean(),
  isDriving: fc.boolean(),
  currentStateDuration: oddText,
}, geotabMutation);
/** objects/ChargeEvent: a .NET TimeSpan duration, states of charge 0-100, kWh and kW, a Coordinate location. */
const chargeEvent = wireRecord({
  id: oddText,
  startTime: geotabTime,
  duration: fc.oneof(fc.constantFrom('02:30:15.5000000', '1.02:00:00', '00:00:00', '24:00:00', '-00:01:00', 'PT1H'), oddText),
  device: geotabRef(deviceId),
  startStateOfCharge: wireNumber(0, 100),
  endStateOfCharge: wireNumber(0, 100),
  energyConsumedKwh: wireNumber(0, 10_000),
  peakPowerKw: wireNumber(0, 4000),
  chargeType: fc.constantFrom('AC', 'DC', 'Unknown'),
  location: wireRecord({ x: wireNumber(-180, 180), y: wireNumber(-90, 90) }),
}, geotabMutation);
const entities = (entity: fc.Arbitrary<unknown>) => fc.array(fc.oneof({ weight: 8, arbitrary: entity }, { weight: 1, arbitrary: hostileValue }), { maxLength: 8 });

describe('geotab mappings', () => {
  it('mapStatusData never throws; each entity is one reading, skipped, ignored or superseded by a higher-ranked source', () => {
    fc.assert(
      fc.property(entities(statusData), fc.constantFrom('negative' as const, 'positive' as const), (list, batteryPowerChargingSign) => {
        const mapped = expectPure(list, () => mapStatusData(list, { batteryPowerChargingSign }));
        expectIngestible(mapped.devices, 'ingest');
        expect(readingCount(mapped.devices) + mapped.skipped + mapped.ignored + mapped.superseded).toBe(list.length);
      }),
      runs(300),
    );
  });

  it('mapChargeEvents never throws; each entity is one charging session ingest accepts, or skipped', () => {
    fc.assert(
      fc.property(entities(chargeEvent), (list) => {
        const mapped = expectPure(list, () => mapChargeEvents(list));
        const sessions = mapped.devices.flatMap((d) => d.chargingSessions ?? []);
        expect(sessions.length + mapped.skipped).toBe(list.length);
        for (const device of mapped.devices) {
          expect(device.readings).toEqual([]);
          const update = {
            workspaceId: '3f6d0c84-1d2b-4c6e-9a1e-0f4b2c8d9e10',
            provider: 'fuzz',
            connectionId: '9a1e3f6d-0c84-4d2b-8c6e-0f4b2c8d9e10',
            externalDeviceId: device.externalDeviceId,
            source: 'poll',
            receivedAt: new Date(now).toISOString(),
            readings: [],
            chargingSessions: device.chargingSessions,
          };
          const checked = updateEnvelopeSchema.safeParse(update);
          expect(checked.success, checked.success ? '' : JSON.stringify(checked.error.issues[0])).toBe(true);
        }
      }),
      runs(300),
    );
  });

  it('mapLogRecords never throws; each entity is a location and a speed, or skipped', () => {
    fc.assert(
      fc.property(entities(logRecord), (list) => {
        const mapped = expectPure(list, () => mapLogRecords(list));
        expectIngestible(mapped.devices, 'ingest');
        expect(readingCount(mapped.devices)).toBe(2 * (list.length - mapped.skipped));
        expect(mapped.ignored).toBe(0);
      }),
      runs(300),
    );
  });

  it('mapDeviceStatusInfos never throws; each entity is a heading, or skipped', () => {
    fc.assert(
      fc.property(entities(deviceStatusInfo), (list) => {
        const mapped = expectPure(list, () => mapDeviceStatusInfos(list));
        expectIngestible(mapped.devices, 'ingest');
        expect(readingCount(mapped.devices)).toBe(list.length - mapped.skipped);
      }),
      runs(300),
    );
  });

  it('maps clean entities to valid readings, none skipped', () => {
    const time = fc.integer({ min: 0, max: 86_400 }).map((s) => new Date(now - s * 1000).toISOString());
    const device = fc.record({ id: fc.constantFrom('b28', 'b29') });
    const cleanStatus = fc.oneof(
      fc.record({ dateTime: time, device, diagnostic: fc.constant({ id: diagnosticIds.stateOfCharge }), data: fc.double({ min: 0, max: 100, noNaN: true }) }),
      fc.record({
        dateTime: time,
        device,
        diagnostic: fc.constantFrom(
          { id: diagnosticIds.odometer },
          { id: diagnosticIds.odometerAdjustment },
          { id: diagnosticIds.j1939TotalVehicleDistance },
          { id: diagnosticIds.j1708TotalVehicleDistance },
          { id: diagnosticIds.obdOdometer },
        ),
        data: fc.double({ min: 0, max: 1e10, noNaN: true }),
      }),
      fc.record({ dateTime: time, device, diagnostic: fc.constant({ id: diagnosticIds.chargingState }), data: fc.integer({ min: -1, max: 5 }) }),
      fc.record({ dateTime: time, device, diagnostic: fc.constant({ id: diagnosticIds.isCharging }), data: fc.constantFrom(0, 1) }),
      fc.record({ dateTime: time, device, diagnostic: fc.constant({ id: diagnosticIds.ignition }), data: fc.constantFrom(0, 1) }),
      fc.record({ dateTime: time, device, diagnostic: fc.constant({ id: diagnosticIds.batteryTemperature }), data: fc.double({ min: -60, max: 100, noNaN: true }) }),
      fc.record({ dateTime: time, device, diagnostic: fc.constant({ id: diagnosticIds.batteryPower }), data: fc.double({ min: -4e6, max: 4e6, noNaN: true }) }),
    );
    const cleanLog = fc.record({ dateTime: time, device, latitude: fc.double({ min: -90, max: 90, noNaN: true }), longitude: fc.double({ min: -180, max: 180, noNaN: true }), speed: fc.double({ min: 0, max: 400, noNaN: true }) });
    const cleanInfo = fc.record({ dateTime: time, device, bearing: fc.double({ min: 0, max: 360, noNaN: true }) });
    fc.assert(
      fc.property(fc.array(cleanStatus, { maxLength: 6 }), fc.array(cleanLog, { maxLength: 4 }), fc.array(cleanInfo, { maxLength: 4 }), (status, logs, infos) => {
        for (const [mapped, count] of [
          [mapStatusData(status), status.length],
          [mapLogRecords(logs), 2 * logs.length],
          [mapDeviceStatusInfos(infos), infos.length],
        ] as const) {
          expect(mapped.skipped + mapped.ignored).toBe(0);
          expectValidReadings(mapped.devices);
          expectIngestible(mapped.devices, 'checked');
          // Several odometer or charging-state sources on one device: the lower-ranked are superseded, not lost.
          expect(readingCount(mapped.devices) + mapped.superseded).toBe(count);
        }
      }),
      runs(200),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Stream frames: text in, a DecodedFrame out.

function expectFrame(frame: DecodedFrame): void {
  expect(['readings', 'keepalive', 'bad']).toContain(frame.kind);
  if (frame.kind === 'bad') {
    expect(typeof frame.reason).toBe('string');
    expect(frame.reason.length).toBeGreaterThan(0);
    expect(frame.reason.length, 'a reason is short enough to log').toBeLessThan(500);
  }
  if (frame.kind === 'readings') expectIngestible(frame.devices, 'checked');
}

/** Text frames: structured ones written with raw number tokens, truncated ones, random text and random JSON. */
function frameText(structured: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 16, arbitrary: structured.map(toJsonText) },
    { weight: 1, arbitrary: fc.tuple(structured.map(toJsonText), fc.nat()).map(([text, cut]) => text.slice(0, cut % (text.length + 1))) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: anyJsonText },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1000, max: 100_000 }), fc.constantFrom<'array' | 'object'>('array', 'object')).map(([depth, kind]) => jsonText.nested(depth, kind)) },
    { weight: 1, arbitrary: fc.constantFrom('', '{}', '[]', 'null', '{"positions":null}', '{"positions":{}}', '{"data":"x"}', '{"positions":[],"devices":[]}', '\ufeff{}') },
  );
}

const knots = fc.oneof({ weight: 4, arbitrary: wireNumber(0, 215) }, { weight: 1, arbitrary: rawNumber });

describe('traccar decodeTraccarFrame', () => {
  const traccarTime = wireTime(
    fc.oneof(
      fc.constantFrom('2024-05-01T14:03:10.000+0000', '2024-05-01T14:03:10.000+00:00', '2024-05-01T14:03:10.000-0530', '2024-05-01T14:03:10'),
      fc.integer({ min: 0, max: 86_400 }).map((s) => new Date(now - s * 1000).toISOString().replace('Z', '+0000')),
    ),
  );
  const traccarId = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 2, 3, 99) }, { weight: 1, arbitrary: fc.constantFrom(1.5, -1, 2 ** 53, Number.MAX_VALUE) }, { weight: 1, arbitrary: hostileValue });
  const uniqueId = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('860000000000001', '860000000000002', 'ABC 123') }, { weight: 1, arbitrary: oddText });
  const device = wireRecord({ id: traccarId, name: oddText, uniqueId, status: fc.constantFrom('online', 'offline', 'unknown', 'bogus'), lastUpdate: traccarTime, positionId: fc.nat(), disabled: fc.boolean() });
  const position = wireRecord({
    id: fc.nat(),
    deviceId: traccarId,
    protocol: fc.constantFrom('osmand', 'teltonika', null),
    serverTime: traccarTime,
    deviceTime: traccarTime,
    fixTime: traccarTime,
    valid: fc.oneof(fc.boolean(), hostileValue),
    latitude: fc.oneof(wireNumber(-90, 90), rawNumber),
    longitude: fc.oneof(wireNumber(-180, 180), rawNumber),
    altitude: wireNumber(-500, 9000),
    speed: knots,
    course: fc.oneof(wireNumber(0, 360), rawNumber),
    address: fc.oneof(oddText, fc.constant(null)),
    accuracy: wireNumber(0, 1000),
    attributes: wireRecord({
      batteryLevel: fc.oneof(wireNumber(0, 100), rawNumber),
      odometer: fc.oneof(wireNumber(0, 1e10), rawNumber),
      totalDistance: wireNumber(0, 1e10),
      ignition: fc.boolean(),
      charge: fc.boolean(),
      motion: fc.boolean(),
      // Keys a connection's options may map: a fraction, an enumeration, raw CAN values, inherited names.
      evSoc: fc.oneof(wireNumber(0, 1), wireNumber(0, 100), rawNumber, hostileValue),
      evCharging: fc.oneof(fc.boolean(), fc.constantFrom(0, 1, 2, 'charging'), hostileValue),
      io1001: fc.oneof(wireNumber(-600, 1000), rawNumber),
      constructor: hostileValue,
    }),
  });
  // The sources a connection may decode with: the defaults, or options naming those keys in various units.
  const sources = fc.oneof(
    fc.constant(defaultAttributeSources),
    fc
      .record({
        socUnit: fc.constantFrom('percent', 'fraction'),
        scale: fc.oneof(fc.constant(1), fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((v) => v !== 0)),
        values: fc.boolean(),
        inherited: fc.boolean(),
      })
      .map(({ socUnit, scale, values, inherited }) =>
        attributeSources(
          traccarOptionsSchema.parse({
            attributes: {
              soc_pct: { attribute: inherited ? 'constructor' : 'evSoc', unit: socUnit },
              charging_state: { attribute: 'evCharging', ...(values && { values: { charging: [1, 'charging'], not_charging: [0], complete: [2] } }) },
              battery_temp_c: { attribute: 'io1001', scale },
              range_km: { attribute: 'odometer', unit: 'mi', scale },
              plugged_in: { attribute: 'evCharging' },
              tracker_battery_pct: null,
            },
          }),
        ),
      ),
  );
  const event = wireRecord({ id: fc.nat(), type: fc.constantFrom('ignitionOn', 'ignitionOff', 'deviceOnline', 'alarm'), eventTime: traccarTime, deviceId: traccarId, positionId: fc.nat(), attributes: fc.object({ maxDepth: 1 }) });
  const frame = fc.oneof(
    { weight: 6, arbitrary: fc.record({ positions: wireList(position, 4) }) },
    { weight: 2, arbitrary: fc.record({ devices: wireList(device, 4) }) },
    { weight: 1, arbitrary: fc.record({ events: wireList(event, 3) }) },
    { weight: 2, arbitrary: fc.record({ devices: wireList(device, 3), positions: wireList(position, 3), events: wireList(event, 2) }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.dictionary(oddText, hostileValue, { maxKeys: 3 }) },
  );

  it('never throws; every frame is readings of valid canonical readings, a keepalive, or bad with a reason', () => {
    // A session that already learned some devices, as after GET /api/devices, and then sees a run of frames.
    const learned = toJsonText({ devices: [{ id: 1, uniqueId: '860000000000001' }, { id: 2, uniqueId: '860000000000002' }, { id: 3, uniqueId: 'ABC 123' }] });
    fc.assert(
      fc.property(fc.array(frameText(frame), { minLength: 1, maxLength: 6 }), sources, (frames, attributes) => {
        const session = new Map<string, unknown>();
        expectFrame(decodeTraccarFrame(learned, session, attributes));
        for (const text of frames) {
          const decoded = decodeTraccarFrame(text, session, attributes);
          expectFrame(decoded);
          if (/^[ \t\n\r]*\{[ \t\n\r]*\}[ \t\n\r]*$/.test(text)) expect(decoded).toEqual({ kind: 'keepalive' });
        }
        // The session holds the learned id map and nothing else.
        expect([...session.keys()]).toEqual(['traccar.uniqueIdByDeviceId']);
      }),
      runs(300),
    );
  });
});

describe('tesla-fleet-telemetry decodeTelemetryRecord (the records Redis and Tessie carry)', () => {
  const vin = '5YJ3E7EB2NF000001';
  const teslaTime = wireTime(fc.constantFrom('2024-05-01T14:03:10.123456789Z', '2024-05-01T14:03:10+00:00', '2024-05-01T14:03:10z', 'null'));
  const decimalText = fc.oneof(
    fc.double({ min: -1e6, max: 1e6, noNaN: true }).map(String),
    fc.constantFrom('76.5', ' 76.5 ', '+1', '-0', '.5', '5.', '1e3', '1e400', '-1e400', 'NaN', 'Infinity', '0x10', '', '1,5', '١٢'),
  );
  const locationText = fc.oneof(
    fc.tuple(fc.double({ min: 0, max: 90, noNaN: true }), fc.constantFrom('N', 'S', 'n', 'X'), fc.double({ min: 0, max: 200, noNaN: true }), fc.constantFrom('E', 'W')).map(([lat, ns, lon, ew]) => `(${lat} ${ns}, ${lon} ${ew})`),
    fc.constantFrom('(37.412374 N, 122.145867 W)', '(91 N, 0 E)', '( 1 N , 2 E )', '(1e2 N, 2 E)', '37.4,-122.1'),
  );
  const value = fc.oneof(
    wireRecord({ stringValue: fc.oneof(decimalText, locationText, fc.constantFrom(...detailedChargeStates, ...shiftStates, 'Charging', 'P', 'D', 'Bogus'), oddText) }),
    wireRecord({ doubleValue: fc.oneof(extremeNumber, rawNumber, decimalText) }),
    wireRecord({ floatValue: fc.oneof(extremeNumber, decimalText) }),
    wireRecord({ intValue: fc.oneof(fc.integer(), extremeNumber, rawNumber) }),
    wireRecord({ longValue: fc.oneof(decimalText, fc.integer(), rawNumber) }),
    wireRecord({ locationValue: wireRecord({ latitude: fc.oneof(wireNumber(-90, 90), rawNumber), longitude: fc.oneof(wireNumber(-180, 180), rawNumber) }) }),
    wireRecord({ detailedChargeStateValue: fc.oneof(fc.constantFrom(...detailedChargeStates), fc.constantFrom('DetailedChargeStateBogus', 'Charging', ''), oddText) }),
    wireRecord({ shiftStateValue: fc.oneof(fc.constantFrom(...shiftStates), fc.constantFrom('ShiftStateX', 'P', ''), oddText) }),
    wireRecord({ booleanValue: fc.boolean(), invalid: fc.oneof(fc.constant(true), hostileValue) }),
    hostileValue,
  );
  /** A number in one of the members vehicles use: typed, or as a string without `prefer_typed`. */
  const numberValue = (min: number, max: number) =>
    fc.oneof(
      fc.record({ stringValue: fc.oneof(fc.double({ min, max, noNaN: true }).map(String), decimalText) }),
      fc.record({ doubleValue: wireNumber(min, max) }),
      fc.record({ floatValue: fc.oneof(wireNumber(min, max), decimalText) }),
      fc.record({ intValue: fc.integer({ min: Math.ceil(min), max: Math.floor(max) }) }),
      fc.record({ longValue: fc.integer({ min: Math.ceil(min), max: Math.floor(max) }).map(String) }),
    );
  const enumValue = (member: string, names: readonly string[]) =>
    fc.oneof(
      fc.constantFrom(...names).map((name) => ({ [member]: name })),
      fc.constantFrom(...names).map((name) => ({ stringValue: name })),
    );
  /** A datum whose value has the member its key is read from, so that many data map: the hostile part is in the values. */
  const alignedDatum = fc.oneof(
    numberValue(0, 100).map((value) => ({ key: 'Soc', value })),
    numberValue(0, 100).map((value) => ({ key: 'BatteryLevel', value })),
    numberValue(0, 6_000_000).map((value) => ({ key: 'Odometer', value })),
    numberValue(0, 360).map((value) => ({ key: 'GpsHeading', value })),
    numberValue(0, 250).map((value) => ({ key: 'VehicleSpeed', value })),
    numberValue(0, 1240).map((value) => ({ key: 'EstBatteryRange', value })),
    numberValue(-60, 100).map((value) => ({ key: 'ModuleTempMax', value })),
    fc.oneof(
      fc.record({ locationValue: fc.record({ latitude: wireNumber(-90, 90), longitude: wireNumber(-180, 180) }) }),
      locationText.map((stringValue) => ({ stringValue })),
    ).map((value) => ({ key: 'Location', value })),
    enumValue('detailedChargeStateValue', detailedChargeStates).map((value) => ({ key: 'DetailedChargeState', value })),
    enumValue('shiftStateValue', shiftStates).map((value) => ({ key: 'Gear', value })),
  );
  const datum = fc.oneof(
    { weight: 6, arbitrary: alignedDatum },
    { weight: 1, arbitrary: alignedDatum.map((d) => ({ ...d, value: { ...d.value, invalid: true } })) },
    {
      weight: 2,
      arbitrary: wireRecord({ key: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...telemetryFields) }, { weight: 1, arbitrary: fc.constantFrom('ChargeLimitSoc', 'soc', '__proto__', 'constructor') }, { weight: 1, arbitrary: oddText }), value }),
    },
  );
  /** protojson Timestamps: UTC with Z and 0, 3, 6 or 9 fractional digits. */
  const protojsonTime = fc.tuple(fc.integer({ min: 0, max: 86_400_000 }), fc.constantFrom(0, 3, 6, 9)).map(([back, digits]) => {
    const iso = new Date(now - back).toISOString();
    return `${iso.slice(0, 19)}${digits === 0 ? '' : `.${`${iso.slice(20, 23)}000000`.slice(0, digits)}`}Z`;
  });
  const record = wireRecord({
    data: wireList(datum, 12),
    createdAt: fc.oneof(
      { weight: 4, arbitrary: protojsonTime },
      { weight: 1, arbitrary: teslaTime },
    ),
    vin: fc.oneof({ weight: 12, arbitrary: fc.constant(vin) }, { weight: 1, arbitrary: fc.constantFrom('5YJ3E7EB2NF000002', vin.toLowerCase(), `${vin} `, 'x'.repeat(65)) }, { weight: 1, arbitrary: oddText }),
    isResend: fc.oneof(fc.boolean(), hostileValue),
  }, { good: 14 });

  it('never throws; every frame is one device of valid readings, one per signal, or bad with a reason', () => {
    fc.assert(
      fc.property(frameText(record), fc.constantFrom<string | undefined>(vin, undefined), fc.constantFrom(...socFields), (text, socketVin, socField) => {
        const decoded = decodeTelemetryRecord(text, socketVin, { socField }, now);
        expectFrame(decoded);
        expect(decoded.kind, 'Fleet Telemetry has no keepalive frame').not.toBe('keepalive');
        if (decoded.kind !== 'readings') return;
        const parsed = JSON.parse(text) as { vin: string; isResend?: unknown };
        expect(decoded.resend === true, 'resend exactly when the record says so').toBe(parsed.isResend === true);
        expect(decoded.devices.length).toBeLessThanOrEqual(1);
        for (const device of decoded.devices) {
          expect(device.externalDeviceId).toBe(parsed.vin);
          if (socketVin !== undefined) expect(device.externalDeviceId).toBe(socketVin);
          const signals = device.readings.map((r: CanonicalReading) => r.signal);
          expect(new Set(signals).size, 'a signal given twice keeps one reading').toBe(signals.length);
          expect(new Set(device.readings.map((r) => r.observedAt)).size, 'every datum is observed at createdAt').toBe(1);
        }
      }),
      runs(300),
    );
  });
});

describe('tesla-fleet-telemetry decodeMqttMessage and decodeRedisMessage (the dispatchers)', () => {
  const vin = '5YJ3E7EB2NF000001';
  const topicVin = fc.oneof({ weight: 8, arbitrary: fc.constant(vin) }, { weight: 1, arbitrary: fc.constantFrom('', 'a b', '+', '#', 'x'.repeat(65)) }, { weight: 1, arbitrary: oddText });
  const field = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...telemetryFields) }, { weight: 1, arbitrary: fc.constantFrom('VehicleName', '__proto__', 'constructor') }, { weight: 1, arbitrary: oddText });
  /** MQTT metric payloads: the value JSON-encoded, as mqtt_payload.go getDatumValue gives it, or anything else. */
  const metricPayload = fc.oneof(
    fc.oneof(wireNumber(-1e6, 1e6), rawNumber).map(toJsonText),
    fc.oneof(fc.double().map(String), fc.constantFrom(...detailedChargeStates, ...shiftStates, 'NaN', '', '(37.4 N, 122.1 W)'), oddText).map((s) => JSON.stringify(s)),
    wireRecord({ latitude: fc.oneof(wireNumber(-90, 90), rawNumber), longitude: fc.oneof(wireNumber(-180, 180), rawNumber) }).map(toJsonText),
    fc.constantFrom('null', 'true', '[]', '{}', '', '"'),
    anyJsonText,
  );
  const mqttMessage = fc.oneof(
    fc.record({ topic: fc.tuple(topicVin, field).map(([v, f]) => `t/base/${v}/v/${f}`), payload: metricPayload, retained: fc.boolean() }),
    fc.record({
      topic: topicVin.map((v) => `t/base/${v}/connectivity`),
      payload: wireRecord({ ConnectionId: oddText, Status: fc.constantFrom('CONNECTED', 'DISCONNECTED', 'UNKNOWN', 'connected', ''), CreatedAt: wireTime() }).map(toJsonText),
    }),
    fc.record({ topic: fc.tuple(topicVin, oddText, fc.constantFrom('current', 'history', 'x')).map(([v, n, l]) => `t/base/${v}/alerts/${n}/${l}`), payload: anyJsonText }),
    fc.record({ topic: fc.string({ maxLength: 60 }), payload: anyJsonText }),
  );

  it('MQTT: never throws; readings are of the topic’s VIN, valid, observed at arrival or at CreatedAt; or bad with a reason', () => {
    fc.assert(
      fc.property(mqttMessage, fc.constantFrom(...socFields), (message, socField) => {
        const decoded = decodeMqttMessage(message, 't/base', { socField }, now);
        expectFrame(decoded);
        if (decoded.kind !== 'readings') return;
        expect(decoded.devices.length).toBeLessThanOrEqual(1);
        for (const device of decoded.devices) {
          expect(message.topic.startsWith(`t/base/${device.externalDeviceId}/`)).toBe(true);
          for (const reading of device.readings) {
            if (reading.signal !== 'connectivity_state') expect(reading.observedAt).toBe(new Date(now).toISOString());
          }
        }
        if ('retained' in message && message.retained && message.topic.includes('/v/')) expect(decoded.devices).toEqual([]);
      }),
      runs(300),
    );
  });

  it('Redis: never throws; readings only of the channel’s VIN and record type, or bad with a reason', () => {
    const channel = fc.tuple(fc.constantFrom('ns', 'other'), fc.constantFrom('V', 'connectivity', 'alerts', 'errors', 'v'), topicVin).map(([ns, type, v]) => `${ns}_${type}_{${v}}`);
    const payload = fc.oneof(
      wireRecord({ data: fc.array(wireRecord({ key: field, value: wireRecord({ stringValue: fc.double().map(String) }) }), { maxLength: 4 }), createdAt: wireTime(), vin: topicVin, isResend: fc.boolean() }).map(toJsonText),
      wireRecord({ vin: topicVin, connectionId: oddText, status: fc.constantFrom('CONNECTED', 'DISCONNECTED', 'UNKNOWN'), createdAt: wireTime(), networkInterface: fc.constant('') }).map(toJsonText),
      anyJsonText,
    );
    fc.assert(
      fc.property(channel, payload, (topic, text) => {
        const decoded = decodeRedisMessage({ topic, payload: text }, 'ns', { socField: 'BatteryLevel' }, now);
        expectFrame(decoded);
        if (decoded.kind !== 'readings') return;
        for (const device of decoded.devices) expect(topic).toBe(`ns_${topic.slice(3).split('_')[0]}_{${device.externalDeviceId}}`);
      }),
      runs(300),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The time rule every mapping leans on.

describe('parseTimestamp, which every mapping normalizes times with', () => {
  it('reads back every instant it accepts, after normalizing it to UTC', () => {
    const text = fc.oneof(
      randomTimestamp,
      fc.constantFrom(...edgeTimestamps.valid, ...edgeTimestamps.outOfRange, ...edgeTimestamps.invalid),
      fc.integer({ min: Date.UTC(100, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) }).chain(spelledInstant),
    );
    fc.assert(
      fc.property(text, (t) => {
        const ms = parseTimestamp(t);
        if (ms === undefined) return;
        const normalized = new Date(ms).toISOString();
        expect(normalized, `${t} normalizes to RFC 3339 UTC`).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        expect(parseTimestamp(normalized), `${t} -> ${normalized} reads back`).toBe(ms);
      }),
      runs(1000),
    );
    for (const t of edgeTimestamps.valid) expect(parseTimestamp(t), t).toBeDefined();
    for (const t of [...edgeTimestamps.outOfRange, ...edgeTimestamps.invalid]) expect(parseTimestamp(t), t).toBeUndefined();
  });
});
