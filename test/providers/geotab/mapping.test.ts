/**
 * Recorded-shape MyGeotab payloads (fixtures written from the documented shapes; each fixture names its source in
 * `_source`) replayed through the wire schemas and the pure mapping, with exact expected readings: the odometer
 * diagnostics and their precedence (SDK guide "GO device logging", sample displayOdometer.html), IsCharging and the
 * charging-state code, the battery power sign per connection option, and ChargeEvents into charging sessions
 * (API reference, objects/ChargeEvent).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { geotabContract } from '../../../src/providers/geotab/contract.ts';
import {
  chargingStateOf,
  isChargingStateOf,
  mapChargeEvents,
  mapDeviceStatusInfos,
  mapLogRecords,
  mapStatusData,
  odometerSources,
  timeSpanMs,
  toUtcTimestamp,
  type SourceMemory,
} from '../../../src/providers/geotab/mapping.ts';
import {
  authenticateResultSchema,
  errorTypeOf,
  feedResultSchema,
  getResultSchema,
  jsonRpcErrorEnvelopeSchema,
  jsonRpcResultEnvelopeSchema,
} from '../../../src/providers/geotab/wire.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
const resultOf = (name: string) => jsonRpcResultEnvelopeSchema.parse(fixture(name)).result;

describe('Geotab mapping of recorded payloads', () => {
  it('maps a StatusData feed page: mapped diagnostics, units, skipped and ignored entities', () => {
    const feed = feedResultSchema.parse(resultOf('statusdata-feed.json'));
    expect(feed.toVersion).toBe('0000000000a1b2f0');
    const mapped = mapStatusData(feed.data);
    expectValidReadings(mapped.devices);
    expect(mapped.devices).toEqual([
      {
        externalDeviceId: 'b28',
        readings: [
          { signal: 'soc_pct', value: 76.5, observedAt: '2024-05-01T14:03:00.000Z' },
          { signal: 'odometer_km', value: 14500.12, observedAt: '2024-05-01T14:03:00.000Z' },
          { signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T14:03:05.123Z' },
          // Positive battery power is out of the battery under the default sign (negative = charging).
          { signal: 'charge_power_kw', value: 0, observedAt: '2024-05-01T14:03:05.000Z' },
          { signal: 'battery_temp_c', value: 24.5, observedAt: '2024-05-01T14:03:06.000Z' },
        ],
      },
      {
        externalDeviceId: 'b29',
        readings: [
          { signal: 'ignition', value: false, observedAt: '2024-05-01T14:10:00.000Z' },
          { signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T14:10:00.000Z' },
          { signal: 'charge_power_kw', value: 35, observedAt: '2024-05-01T14:10:00.000Z' },
          { signal: 'ignition', value: true, observedAt: '2024-05-01T14:11:00.000Z' },
          { signal: 'charging_state', value: 'not_charging', observedAt: '2024-05-01T14:11:00.000Z' },
        ],
      },
      { externalDeviceId: 'b2A', readings: [{ signal: 'charging_state', value: 'unknown', observedAt: '2024-05-01T14:12:00.000Z' }] },
    ]);
    // A bad date, a string value, a device that is not a reference, ignition 3, and .NET's MinValue date.
    expect(mapped.skipped).toBe(5);
    // Powertrain type and device voltage are real diagnostics Fleetwire does not map.
    expect(mapped.ignored).toBe(2);
  });

  it('maps LogRecords to location and speed, skipping one without a longitude', () => {
    const feed = feedResultSchema.parse(resultOf('logrecord-feed.json'));
    const mapped = mapLogRecords(feed.data);
    expectValidReadings(mapped.devices);
    expect(mapped.devices).toEqual([
      {
        externalDeviceId: 'b28',
        readings: [
          { signal: 'location', value: { lat: 43.45, lon: -79.68 }, observedAt: '2024-05-01T14:03:10.000Z' },
          { signal: 'speed_kph', value: 54, observedAt: '2024-05-01T14:03:10.000Z' },
          { signal: 'location', value: { lat: 43.4512, lon: -79.6755 }, observedAt: '2024-05-01T14:03:40.000Z' },
          { signal: 'speed_kph', value: 0, observedAt: '2024-05-01T14:03:40.000Z' },
        ],
      },
      {
        externalDeviceId: 'b29',
        readings: [
          { signal: 'location', value: { lat: 52.486213, lon: 13.425411 }, observedAt: '2024-05-01T14:04:00.000Z' },
          { signal: 'speed_kph', value: 31.5, observedAt: '2024-05-01T14:04:00.000Z' },
        ],
      },
    ]);
    expect(mapped.skipped).toBe(1);
  });

  it('maps DeviceStatusInfo to the heading only, at its dateTime', () => {
    const list = getResultSchema.parse(resultOf('devicestatusinfo-get.json'));
    const mapped = mapDeviceStatusInfos(list);
    expectValidReadings(mapped.devices);
    expect(mapped.devices).toEqual([
      { externalDeviceId: 'b28', readings: [{ signal: 'heading_deg', value: 271, observedAt: '2024-05-01T14:03:40.000Z' }] },
      { externalDeviceId: 'b29', readings: [{ signal: 'heading_deg', value: 0, observedAt: '2024-05-01T14:04:00.000Z' }] },
    ]);
    // A device that never reported (MinValue date) and a bearing that is not a number.
    expect(mapped.skipped).toBe(2);
  });

  it('skips entities that are not objects at all, without failing the page', () => {
    const mapped = mapStatusData([null, 'x', 42, [], { dateTime: '2024-05-01T14:03:00Z' }]);
    expect(mapped).toEqual({ devices: [], skipped: 5, ignored: 0, superseded: 0 });
    expect(mapChargeEvents([null, {}]).skipped).toBe(2);
    expect(mapLogRecords([undefined]).skipped).toBe(1);
    expect(mapDeviceStatusInfos([{}]).skipped).toBe(1);
  });

  it('normalizes MyGeotab times to UTC RFC 3339 with Z', () => {
    expect(toUtcTimestamp('2019-04-26T16:13:11.9440478Z')).toBe('2019-04-26T16:13:11.944Z');
    expect(toUtcTimestamp('2024-05-01T14:03:00')).toBe('2024-05-01T14:03:00.000Z');
    expect(toUtcTimestamp('2024-05-01T09:03:00-05:00')).toBe('2024-05-01T14:03:00.000Z');
    expect(toUtcTimestamp('2024-02-30T00:00:00Z')).toBeUndefined();
    expect(toUtcTimestamp('May 1, 2024')).toBeUndefined();
    expect(toUtcTimestamp('0001-01-01T00:00:00Z')).toBeUndefined();
  });

  it('reads the charging-state encoding our simulator uses (0, 1 AC, 2 DC)', () => {
    expect([0, 1, 2, 3, -1].map(chargingStateOf)).toEqual(['not_charging', 'charging', 'charging', 'unknown', 'unknown']);
  });
});

describe('Geotab odometer diagnostics (fixture statusdata-odometer-feed.json)', () => {
  const feed = () => feedResultSchema.parse(resultOf('statusdata-odometer-feed.json')).data;

  it('reads every odometer diagnostic in metres, and follows the highest-ranked source a device reports', () => {
    const mapped = mapStatusData(feed());
    expectValidReadings(mapped.devices);
    const odometer = (id: string) => mapped.devices.find((d) => d.externalDeviceId === id)?.readings.map((r) => [r.observedAt, r.value]);
    // A truck with only the J1939 distance.
    expect(odometer('bT1')).toEqual([
      ['2024-05-01T14:00:00.000Z', 250_000],
      ['2024-05-01T14:30:00.000Z', 250_020],
    ]);
    // The adjusted odometer is the odometer itself (not an offset to add): it wins over the raw J1939 distance,
    // even where it comes later in the page.
    expect(odometer('bT2')).toEqual([
      ['2024-05-01T14:00:00.000Z', 100_000],
      ['2024-05-01T15:05:00.000Z', 100_051],
    ]);
    // The OBD odometer, in the typings' spelling.
    expect(odometer('bV1')).toEqual([['2024-05-01T14:00:00.000Z', 42_000.5]]);
    // The corrected ECM odometer outranks the adjustment.
    expect(odometer('bV2')).toEqual([['2024-05-01T14:00:00.000Z', 60_000]]);
    expect(odometer('bB1')).toEqual([['2024-05-01T14:00:00.000Z', 500]]);
    // Two J1939 readings under the adjustment and one adjustment under the corrected odometer.
    expect(mapped.superseded).toBe(3);
    // DiagnosticRawOdometerId is not read: the corrected odometer is built from it.
    expect(mapped.ignored).toBe(1);
    expect(mapped.skipped).toBe(0);
  });

  it('keeps the precedence across pages through the SourceMemory, and hands over after the hold', () => {
    const sources: SourceMemory = new Map();
    const at = (dateTime: string, id: string, data: number) => ({ dateTime, data, device: { id: 'b1' }, diagnostic: { id } });
    const first = mapStatusData([at('2024-05-01T08:00:00Z', 'DiagnosticOdometerId', 10_000_000)], { sources });
    expect(first.devices[0]!.readings.map((r) => r.value)).toEqual([10_000]);
    // An hour later the OBD odometer alone: the corrected odometer still holds the device.
    const second = mapStatusData([at('2024-05-01T09:00:00Z', 'DiagnosticOBDOdometerReaderId', 9_000_000)], { sources });
    expect(second).toMatchObject({ devices: [], superseded: 1 });
    // Over six hours after the corrected odometer last reported, the OBD one takes over.
    const third = mapStatusData([at('2024-05-01T14:00:01Z', 'DiagnosticOBDOdometerReaderId', 9_010_000)], { sources });
    expect(third.devices[0]!.readings.map((r) => r.value)).toEqual([9010]);
    // A memory-less mapping has no history to go by.
    expect(mapStatusData([at('2024-05-01T09:00:00Z', 'DiagnosticOBDOdometerReaderId', 9_000_000)]).superseded).toBe(0);
    expect(odometerSources[0]).toBe('DiagnosticOdometerId');
  });
});

describe('Geotab charging diagnostics (fixture statusdata-charging-feed.json)', () => {
  const feed = () => feedResultSchema.parse(resultOf('statusdata-charging-feed.json')).data;

  it('reads IsCharging into charging_state before the charging-state code, and battery power negative into the battery by default', () => {
    const mapped = mapStatusData(feed());
    expectValidReadings(mapped.devices);
    expect(mapped.devices).toEqual([
      {
        externalDeviceId: 'bE1',
        readings: [
          { signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T14:00:00.000Z' },
          { signal: 'charge_power_kw', value: 50, observedAt: '2024-05-01T14:00:00.000Z' },
          { signal: 'charging_state', value: 'not_charging', observedAt: '2024-05-01T15:00:00.000Z' },
          // Power out of the battery (driving) is no charging power.
          { signal: 'charge_power_kw', value: 0, observedAt: '2024-05-01T15:10:00.000Z' },
        ],
      },
      // Without IsCharging, the charging-state code answers.
      { externalDeviceId: 'bE2', readings: [{ signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T14:00:00.000Z' }] },
    ]);
    // IsCharging 3 is no boolean.
    expect(mapped.skipped).toBe(1);
    expect(mapped.superseded).toBe(2);
    expect([1, 0, 2, -1, 0.5].map(isChargingStateOf)).toEqual(['charging', 'not_charging', undefined, undefined, undefined]);
  });

  it('reads positive battery power as charging when the connection says so', () => {
    const mapped = mapStatusData(feed(), { batteryPowerChargingSign: 'positive' });
    const power = mapped.devices[0]!.readings.filter((r) => r.signal === 'charge_power_kw').map((r) => r.value);
    expect(power).toEqual([0, 12]);
  });

  it('takes the sign as a connection option with the default negative, and nothing else', () => {
    const options = geotabContract.options;
    expect(options.parse({})).toEqual({ batteryPowerChargingSign: 'negative' });
    expect(options.parse({ batteryPowerChargingSign: 'positive' })).toEqual({ batteryPowerChargingSign: 'positive' });
    expect(options.safeParse({ batteryPowerChargingSign: 'up' }).success).toBe(false);
    expect(options.safeParse({ other: 1 }).success).toBe(false);
  });
});

describe('Geotab ChargeEvents (fixture chargeevent-feed.json)', () => {
  it('maps ChargeEvents to charging sessions: end = start + duration, energy at the charger, location from x/y', () => {
    const feed = feedResultSchema.parse(resultOf('chargeevent-feed.json'));
    const mapped = mapChargeEvents(feed.data);
    expect(mapped.devices).toEqual([
      {
        externalDeviceId: 'b28',
        readings: [],
        chargingSessions: [
          {
            externalId: 'ce1',
            startedAt: '2024-05-01T22:10:00.000Z',
            endedAt: '2024-05-02T00:40:15.500Z',
            startSocPct: 21.5,
            endSocPct: 88,
            energyKwh: 51.234,
            peakPowerKw: 11.2,
            location: { lat: 43.45, lon: -79.68 },
          },
        ],
      },
      {
        externalDeviceId: 'b29',
        readings: [],
        chargingSessions: [
          { externalId: 'ce2', startedAt: '2024-05-02T06:00:00.000Z', endedAt: '2024-05-03T08:00:00.000Z', startSocPct: 5, endSocPct: 100, energyKwh: 400.5, peakPowerKw: 350, location: null },
        ],
      },
      {
        externalDeviceId: 'b2A',
        readings: [],
        chargingSessions: [
          { externalId: 'ce3', startedAt: '2024-05-03T10:00:00.000Z', endedAt: null, startSocPct: null, endSocPct: null, energyKwh: null, peakPowerKw: null, location: null },
        ],
      },
    ]);
    // A state of charge of 130, .NET's MinValue start, an unreadable duration, a device that is not a reference.
    expect(mapped.skipped).toBe(4);
  });

  it('reads .NET TimeSpans as MyGeotab writes them', () => {
    expect(timeSpanMs('02:30:15.5000000')).toBe(9_015_500);
    expect(timeSpanMs('1.02:00:00')).toBe(93_600_000);
    expect(timeSpanMs('00:00:00')).toBe(0);
    expect(timeSpanMs('24:00:00')).toBeUndefined();
    expect(timeSpanMs('-00:10:00')).toBeUndefined();
    expect(timeSpanMs('PT10M')).toBeUndefined();
  });
});

describe('Geotab wire envelopes', () => {
  it('reads the Authenticate result', () => {
    expect(authenticateResultSchema.parse(resultOf('authenticate.json'))).toEqual({
      credentials: { database: 'acme', sessionId: '3225932739582116430', userName: 'bob@acme.com' },
      path: 'ThisServer',
    });
  });

  it('reads error types from data.type, falling back to errors[0].name', () => {
    const types = ['error-invalid-user.json', 'error-over-limit.json', 'error-missing-method.json'].map((name) =>
      errorTypeOf(jsonRpcErrorEnvelopeSchema.parse(fixture(name)).error),
    );
    expect(types).toEqual(['InvalidUserException', 'OverLimitException', 'MissingMethodException']);
    expect(jsonRpcResultEnvelopeSchema.safeParse(fixture('error-invalid-user.json')).success).toBe(false);
    expect(jsonRpcErrorEnvelopeSchema.safeParse(fixture('authenticate.json')).success).toBe(false);
  });
});
