/**
 * Recorded-shape MyGeotab payloads (fixtures written from the documented shapes) replayed through the wire
 * schemas and the pure mapping, with exact expected readings.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chargingStateOf, mapDeviceStatusInfos, mapLogRecords, mapStatusData, toUtcTimestamp } from '../../../src/providers/geotab/mapping.ts';
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
          { signal: 'charge_power_kw', value: 48.25, observedAt: '2024-05-01T14:03:05.000Z' },
          { signal: 'battery_temp_c', value: 24.5, observedAt: '2024-05-01T14:03:06.000Z' },
        ],
      },
      {
        externalDeviceId: 'b29',
        readings: [
          { signal: 'ignition', value: false, observedAt: '2024-05-01T14:10:00.000Z' },
          { signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T14:10:00.000Z' },
          { signal: 'charge_power_kw', value: 0, observedAt: '2024-05-01T14:10:00.000Z' },
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
    expect(mapped).toEqual({ devices: [], skipped: 5, ignored: 0 });
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
