/**
 * Tesla Fleet Telemetry record -> canonical readings (reference/provider-wire-formats.md §3b and the Tesla column
 * of §5). Pure. Every datum of a record was observed at the record's `createdAt`. A datum whose value is
 * `invalid`, unparseable or outside the catalogue's bounds is skipped alone; fields Fleetwire does not map are
 * ignored. Converted values are rounded to 3 decimals, the precision vehicles send.
 */
import { checkSignalValue, type SignalName } from '../../canonical/signals.ts';
import type { CanonicalReading } from '../../canonical/update.ts';
import { isRecord } from '../json-values.ts';
import { enumOf, locationOf, numberOf } from './values.ts';
import { kmPerMile, type TelemetryField } from './wire.ts';

type Candidate = [SignalName, unknown];

const round3 = (value: number) => Math.round(value * 1000) / 1000;
const number = (signal: SignalName, value: number | undefined, factor = 1): Candidate[] =>
  value === undefined ? [] : [[signal, round3(value * factor)]];

/** What DetailedChargeState says about charging and the cable. Unknown says nothing about the cable. */
const chargeStates: Record<string, { charging: string; pluggedIn?: boolean }> = {
  Charging: { charging: 'charging', pluggedIn: true },
  Starting: { charging: 'charging', pluggedIn: true },
  Complete: { charging: 'complete', pluggedIn: true },
  NoPower: { charging: 'not_charging', pluggedIn: true },
  Stopped: { charging: 'not_charging', pluggedIn: true },
  Disconnected: { charging: 'not_charging', pluggedIn: false },
  Unknown: { charging: 'unknown' },
};

/** There is no ignition field: a gear other than park means the vehicle is on (our inference, §3b). */
const gearIgnition: Record<string, boolean> = { P: false, D: true, R: true, N: true };

const fieldMappings: Record<TelemetryField, (value: Record<string, unknown>) => Candidate[]> = {
  Soc: (v) => number('soc_pct', numberOf(v)),
  Odometer: (v) => number('odometer_km', numberOf(v), kmPerMile),
  Location: (v) => {
    const location = locationOf(v);
    return location ? [['location', location]] : [];
  },
  GpsHeading: (v) => number('heading_deg', numberOf(v)),
  VehicleSpeed: (v) => number('speed_kph', numberOf(v), kmPerMile),
  EstBatteryRange: (v) => number('range_km', numberOf(v), kmPerMile),
  ModuleTempMax: (v) => number('battery_temp_c', numberOf(v)),
  DetailedChargeState: (v) => {
    const state = chargeStates[enumOf(v, 'detailedChargeStateValue', 'DetailedChargeState') ?? ''];
    if (!state) return [];
    const candidates: Candidate[] = [['charging_state', state.charging]];
    if (state.pluggedIn !== undefined) candidates.push(['plugged_in', state.pluggedIn]);
    return candidates;
  },
  Gear: (v) => {
    const ignition = gearIgnition[enumOf(v, 'shiftStateValue', 'ShiftState') ?? ''];
    return ignition === undefined ? [] : [['ignition', ignition]];
  },
};

/** The readings of a record's `data` list, all observed at `observedAt`. A signal given twice keeps the last. */
export function mapTelemetryData(data: readonly unknown[], observedAt: string): CanonicalReading[] {
  const bySignal = new Map<SignalName, CanonicalReading>();
  for (const datum of data) {
    if (!isRecord(datum) || typeof datum.key !== 'string' || !isRecord(datum.value)) continue;
    if (!Object.hasOwn(fieldMappings, datum.key)) continue;
    for (const [signal, value] of fieldMappings[datum.key as TelemetryField](datum.value)) {
      const check = checkSignalValue(signal, value);
      if (check.ok) bySignal.set(signal, { signal, value: check.value, observedAt } as CanonicalReading);
    }
  }
  return [...bySignal.values()];
}
