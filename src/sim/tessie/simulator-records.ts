/**
 * What the Tessie simulator (and the fleet-telemetry MQTT publisher, one field at a time) puts on the wire, built from the fleet model's samples (record shape
 * from reference/provider-wire-formats.md §3b, string values in the style vehicles send without `prefer_typed`),
 * and what each record says in canonical terms, by the simulator's own arithmetic rather than the adapter's.
 */
import type { ChargingState, SignalName } from '../../canonical/signals.ts';
import type { ServedReading } from '../ground-truth.ts';
import type { DetailedChargeState, TelemetryDatum, TelemetryRecord } from '../../providers/tesla-fleet-telemetry/wire.ts';

// Its own constant, not the adapter's: ground truth that shared the adapter's numbers would agree with its bugs.
const kmPerMile = 1.609344;
const round3 = (value: number) => Math.round(value * 1000) / 1000;
const text = (value: number) => ({ stringValue: value.toFixed(3) });

/** The newest value of each signal a vehicle reported in a tick, plus what it last reported of the rest. */
export interface VehicleReport {
  /** Signals sampled in this tick: only these go on the wire, as Tesla sends on change. */
  sampled: ReadonlyMap<SignalName, unknown>;
  /** The latest value of every signal, sampled now or earlier (DetailedChargeState needs both halves). */
  known: ReadonlyMap<SignalName, unknown>;
}

export function detailedChargeState(charging: ChargingState, pluggedIn: boolean): DetailedChargeState {
  switch (charging) {
    case 'charging':
      return 'DetailedChargeStateCharging';
    case 'complete':
      return 'DetailedChargeStateComplete';
    case 'not_charging':
      return pluggedIn ? 'DetailedChargeStateStopped' : 'DetailedChargeStateDisconnected';
    case 'unknown':
      return 'DetailedChargeStateUnknown';
  }
}

/** One record of one vehicle, or undefined when nothing it sampled has a Tesla field (charge power alone). */
export function simulatedRecord(vin: string, report: VehicleReport, createdAtMs: number): TelemetryRecord | undefined {
  const { sampled, known } = report;
  const data: TelemetryDatum[] = [];
  const numberOf = (signal: SignalName) => sampled.get(signal) as number | undefined;
  const location = sampled.get('location') as { lat: number; lon: number } | undefined;
  if (location) data.push({ key: 'Location', value: { locationValue: { latitude: location.lat, longitude: location.lon } } });
  // Both state-of-charge fields, with one value: whichever a connection's socField picks, soc_pct is the same.
  const plain: [SignalName, string, number][] = [
    ['soc_pct', 'BatteryLevel', 1],
    ['soc_pct', 'Soc', 1],
    ['odometer_km', 'Odometer', kmPerMile],
    ['heading_deg', 'GpsHeading', 1],
    ['speed_kph', 'VehicleSpeed', kmPerMile],
    ['range_km', 'EstBatteryRange', kmPerMile],
    ['battery_temp_c', 'ModuleTempMax', 1],
  ];
  for (const [signal, key, kmPerUnit] of plain) {
    const value = numberOf(signal);
    if (value !== undefined) data.push({ key, value: text(value / kmPerUnit) });
  }
  if (sampled.has('charging_state') || sampled.has('plugged_in')) {
    const state = detailedChargeState(known.get('charging_state') as ChargingState, known.get('plugged_in') === true);
    data.push({ key: 'DetailedChargeState', value: { detailedChargeStateValue: state } });
  }
  if (sampled.has('ignition')) {
    data.push({ key: 'Gear', value: { shiftStateValue: sampled.get('ignition') === true ? 'ShiftStateD' : 'ShiftStateP' } });
  }
  if (data.length === 0) return undefined;
  return { data, createdAt: new Date(createdAtMs).toISOString().replace('.000Z', 'Z'), vin, isResend: false };
}

const servedCharge: Record<DetailedChargeState, { charging: ChargingState; pluggedIn?: boolean }> = {
  DetailedChargeStateCharging: { charging: 'charging', pluggedIn: true },
  DetailedChargeStateStarting: { charging: 'charging', pluggedIn: true },
  DetailedChargeStateComplete: { charging: 'complete', pluggedIn: true },
  DetailedChargeStateStopped: { charging: 'not_charging', pluggedIn: true },
  DetailedChargeStateNoPower: { charging: 'not_charging', pluggedIn: true },
  DetailedChargeStateDisconnected: { charging: 'not_charging', pluggedIn: false },
  DetailedChargeStateUnknown: { charging: 'unknown' },
};

/** The canonical readings a record carries (it was built by simulatedRecord, so every value is well-formed). */
export function servedReadingsOf(record: TelemetryRecord, account: string, createdAtMs: number): ServedReading[] {
  const served: ServedReading[] = [];
  const add = (signal: SignalName, value: unknown) =>
    served.push({ account, externalDeviceId: record.vin, signal, value, observedAtMs: createdAtMs });
  const perMile: Record<string, SignalName> = { Odometer: 'odometer_km', VehicleSpeed: 'speed_kph', EstBatteryRange: 'range_km' };
  const asIs: Record<string, SignalName> = { BatteryLevel: 'soc_pct', GpsHeading: 'heading_deg', ModuleTempMax: 'battery_temp_c' };
  for (const { key, value } of record.data) {
    if ('locationValue' in value) add('location', { lat: value.locationValue.latitude, lon: value.locationValue.longitude });
    else if ('stringValue' in value && perMile[key]) add(perMile[key], round3(Number(value.stringValue) * kmPerMile));
    else if ('stringValue' in value && asIs[key]) add(asIs[key], Number(value.stringValue));
    else if ('detailedChargeStateValue' in value) {
      const state = servedCharge[value.detailedChargeStateValue];
      add('charging_state', state.charging);
      if (state.pluggedIn !== undefined) add('plugged_in', state.pluggedIn);
    } else if ('shiftStateValue' in value) add('ignition', value.shiftStateValue !== 'ShiftStateP');
  }
  return served;
}
