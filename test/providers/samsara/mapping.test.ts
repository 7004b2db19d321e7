/**
 * Recorded Samsara feed and history payloads (written from the documented shapes) replayed through the mapping:
 * exact canonical values, the physical invariants of every reading, and unreadable entries skipped and counted.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mapVehicleStats } from '../../../src/providers/samsara/mapping.ts';
import { vehicleStatsListResponseSchema } from '../../../src/providers/samsara/wire.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';

function fixture(name: string) {
  const json: unknown = JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
  // The fixtures must pass the client's envelope check, or they would never reach the mapping.
  return vehicleStatsListResponseSchema.parse(json);
}

describe('Samsara mapping', () => {
  it('maps a gps / state of charge / charging status feed page', () => {
    const { devices, skipped } = mapVehicleStats(fixture('feed-gps-soc-charging.json').data);
    expectValidReadings(devices, { notAfterMs: Date.parse('2024-05-02T00:00:00Z') });
    expect(skipped).toBe(0);
    // The vehicle without any of the requested stats yields no device at all.
    expect(devices).toEqual([
      {
        externalDeviceId: '212014918732717',
        readings: [
          { signal: 'location', value: { lat: 37.38229, lon: -122.05264 }, observedAt: '2024-05-01T14:03:10.000Z' },
          { signal: 'heading_deg', value: 90, observedAt: '2024-05-01T14:03:10.000Z' },
          // 31.2 mph x 1.609344 = 50.2115328 km/h, rounded to two decimals.
          { signal: 'speed_kph', value: 50.21, observedAt: '2024-05-01T14:03:10.000Z' },
          { signal: 'location', value: { lat: 37.38301, lon: -122.05011 }, observedAt: '2024-05-01T14:03:20.250Z' },
          { signal: 'heading_deg', value: 92.5, observedAt: '2024-05-01T14:03:20.250Z' },
          { signal: 'speed_kph', value: 0, observedAt: '2024-05-01T14:03:20.250Z' },
          { signal: 'soc_pct', value: 76.5, observedAt: '2024-05-01T14:03:00.000Z' },
          { signal: 'soc_pct', value: 76.25, observedAt: '2024-05-01T14:04:00.000Z' },
          { signal: 'charging_state', value: 'not_charging', observedAt: '2024-05-01T13:10:00.000Z' },
        ],
      },
      {
        externalDeviceId: '212014918732718',
        readings: [
          // An offset time is normalized to UTC with Z.
          { signal: 'location', value: { lat: 52.52, lon: 13.405 }, observedAt: '2024-05-01T14:03:05.000Z' },
          { signal: 'heading_deg', value: 359, observedAt: '2024-05-01T14:03:05.000Z' },
          { signal: 'speed_kph', value: 20.12, observedAt: '2024-05-01T14:03:05.000Z' },
          { signal: 'soc_pct', value: 100, observedAt: '2024-05-01T14:02:30.000Z' },
          { signal: 'charging_state', value: 'charging', observedAt: '2024-05-01T13:55:00.000Z' },
          { signal: 'charging_state', value: 'unknown', observedAt: '2024-05-01T14:01:00.000Z' },
        ],
      },
    ]);
  });

  it('maps an odometer / engine state / battery temperature history page, falling back to the GPS odometer', () => {
    const { devices, skipped } = mapVehicleStats(fixture('history-odometer-engine-temp.json').data);
    expectValidReadings(devices, { notAfterMs: Date.parse('2024-05-02T00:00:00Z') });
    expect(skipped).toBe(0);
    expect(devices).toEqual([
      {
        externalDeviceId: '212014918732717',
        readings: [
          // OBD wins; the GPS odometer of the same vehicle (14400 km) is not a second reading.
          { signal: 'odometer_km', value: 14500.12, observedAt: '2024-05-01T14:00:00.000Z' },
          { signal: 'odometer_km', value: 14502.987, observedAt: '2024-05-01T14:05:00.000Z' },
          { signal: 'ignition', value: true, observedAt: '2024-05-01T13:59:40.000Z' },
          { signal: 'ignition', value: true, observedAt: '2024-05-01T14:00:05.000Z' },
          { signal: 'battery_temp_c', value: 27.35, observedAt: '2024-05-01T14:00:00.000Z' },
        ],
      },
      {
        externalDeviceId: '212014918732718',
        readings: [
          { signal: 'odometer_km', value: 88001.5, observedAt: '2024-05-01T14:01:00.000Z' },
          { signal: 'ignition', value: false, observedAt: '2024-05-01T14:10:00.500Z' },
          { signal: 'battery_temp_c', value: -5.25, observedAt: '2024-05-01T14:01:00.000Z' },
        ],
      },
    ]);
  });

  it('skips and counts what it cannot read, and keeps the rest', () => {
    const { devices, skipped } = mapVehicleStats(fixture('feed-unreadable-entries.json').data);
    expectValidReadings(devices, { notAfterMs: Date.parse('2024-05-02T00:00:00Z') });
    // 2 items without a usable id, 1 item with an empty id, 3 gps points (no latitude, no zone, 30 February),
    // 2 charging codes (7, "2"), 1 engine state ("Unknown"), 1 stat that is not a list.
    expect(skipped).toBe(10);
    expect(devices).toEqual([
      {
        externalDeviceId: '212014918732717',
        readings: [
          { signal: 'location', value: { lat: 37.39, lon: -122.06 }, observedAt: '2024-05-01T14:03:30.000Z' },
          { signal: 'ignition', value: false, observedAt: '2024-05-01T14:00:10.000Z' },
        ],
      },
    ]);
  });

  it('merges two items of the same vehicle into one device and leaves values out of bounds to ingest', () => {
    const { devices, skipped } = mapVehicleStats([
      { id: '1', evStateOfChargeMilliPercent: [{ time: '2024-05-01T14:00:00Z', value: 50000 }] },
      { id: '1', gps: [{ time: '2024-05-01T14:00:00Z', latitude: 91, longitude: 0 }] },
    ]);
    expect(skipped).toBe(0);
    expect(devices).toEqual([
      {
        externalDeviceId: '1',
        readings: [
          { signal: 'soc_pct', value: 50, observedAt: '2024-05-01T14:00:00.000Z' },
          // Readable but impossible: ingest rejects it as invalid_value, where the operator can see it.
          { signal: 'location', value: { lat: 91, lon: 0 }, observedAt: '2024-05-01T14:00:00.000Z' },
        ],
      },
    ]);
  });

  it('maps the Telematics Sync guide’s first engineStates answer', () => {
    const { devices, skipped } = mapVehicleStats(fixture('feed-engine-states-guide.json').data);
    expect(skipped).toBe(0);
    expect(devices).toEqual([{ externalDeviceId: '281474977075805', readings: [{ signal: 'ignition', value: false, observedAt: '2020-07-03T02:11:51.000Z' }] }]);
  });

  it('takes the OBD odometer where a vehicle has one (also split over two items) and the GPS one where not', () => {
    const data = fixture('history-odometer-sources.json').data;
    const mapped = mapVehicleStats(data);
    expectValidReadings(mapped.devices, { notAfterMs: Date.parse('2024-05-02T00:00:00Z') });
    // Decorations are values at an entry's time, not readings: neither mapped nor skipped.
    expect(mapped.skipped).toBe(0);
    expect(mapped.devices).toEqual([
      {
        externalDeviceId: '281474977075805',
        readings: [
          { signal: 'odometer_km', value: 14500.12, observedAt: '2024-05-01T14:00:00.000Z' },
          { signal: 'odometer_km', value: 14502.987, observedAt: '2024-05-01T14:05:00.000Z' },
        ],
      },
      {
        externalDeviceId: '281474977075806',
        readings: [
          { signal: 'odometer_km', value: 88001.5, observedAt: '2024-05-01T14:01:00.000Z' },
          { signal: 'odometer_km', value: 88004.75, observedAt: '2024-05-01T14:06:00.500Z' },
        ],
      },
      // The GPS entry of the first item is left out: the same vehicle's second item has OBD.
      { externalDeviceId: '281474977075807', readings: [{ signal: 'odometer_km', value: 61250, observedAt: '2024-05-01T14:02:00.000Z' }] },
    ]);
    expect(mapped.obdOdometerVehicles).toEqual(['281474977075805', '281474977075807']);
  });

  it('never maps the GPS odometer of a vehicle known from earlier pages to have OBD', () => {
    const data = fixture('history-odometer-sources.json').data;
    const mapped = mapVehicleStats(data, { obdOdometerVehicles: new Set(['281474977075806']) });
    expect(mapped.devices.map((d) => d.externalDeviceId)).toEqual(['281474977075805', '281474977075807']);
    // Known vehicles are not repeated back: only this page's OBD vehicles are.
    expect(mapped.obdOdometerVehicles).toEqual(['281474977075805', '281474977075807']);
  });

  it('is pure: the same input gives the same output and is not modified', () => {
    const data = fixture('feed-gps-soc-charging.json').data;
    const before = JSON.stringify(data);
    expect(mapVehicleStats(data)).toEqual(mapVehicleStats(data));
    expect(JSON.stringify(data)).toBe(before);
  });
});
