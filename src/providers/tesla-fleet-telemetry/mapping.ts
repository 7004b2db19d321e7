/**
 * Tesla Fleet Telemetry data -> canonical readings (reference/provider-wire-formats.md §3b and the Tesla column
 * of §5). Pure. Every datum of a record was observed at the record's `createdAt`; an MQTT metric, which carries no
 * time, at its arrival. A datum whose value is `invalid` is skipped and counted; one unparseable or outside the
 * catalogue's bounds is skipped alone; fields Fleetwire does not map are ignored. Converted values are rounded to 3
 * decimals, the precision vehicles send. BatteryLevel and Soc both read as a percentage; the connection's
 * `socField` says which of them is `soc_pct` (the other is ignored, so one vehicle never has two SoC series).
 */
import { checkSignalValue, type SignalName } from '../../canonical/signals.ts';
import type { CanonicalReading } from '../../canonical/update.ts';
import { isRecord } from '../json-values.ts';
import { enumOf, locationOf, numberOf } from './values.ts';
import { kmPerMile, telemetryFields, type ConnectivityEvent, type SocField, type TelemetryField } from './wire.ts';

export interface TelemetryMappingOptions {
  /** Which field feeds `soc_pct`. */
  socField: SocField;
}

/** What a list of data said: its readings, and how many mapped fields the vehicle marked invalid. */
export interface MappedData {
  readings: CanonicalReading[];
  invalid: number;
}

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

const fieldMappings: Record<TelemetryField, (value: Record<string, unknown>, options: TelemetryMappingOptions) => Candidate[]> = {
  Soc: (v, options) => (options.socField === 'Soc' ? number('soc_pct', numberOf(v)) : []),
  BatteryLevel: (v, options) => (options.socField === 'BatteryLevel' ? number('soc_pct', numberOf(v)) : []),
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
export function mapTelemetryData(data: readonly unknown[], observedAt: string, options: TelemetryMappingOptions): MappedData {
  const bySignal = new Map<SignalName, CanonicalReading>();
  let invalid = 0;
  for (const datum of data) {
    if (!isRecord(datum) || typeof datum.key !== 'string' || !isRecord(datum.value)) continue;
    if (!isTelemetryField(datum.key)) continue;
    if (datum.value.invalid === true) {
      invalid += 1;
      continue;
    }
    for (const [signal, value] of fieldMappings[datum.key](datum.value, options)) {
      const check = checkSignalValue(signal, value);
      if (check.ok) bySignal.set(signal, { signal, value: check.value, observedAt } as CanonicalReading);
    }
  }
  return { readings: [...bySignal.values()], invalid };
}

export function isTelemetryField(key: string): key is TelemetryField {
  return (telemetryFields as readonly string[]).includes(key);
}

/**
 * An MQTT metric's payload (datastore/mqtt/mqtt_payload.go getDatumValue) as the protojson `Value` the record
 * mapping reads: `null` is an invalid value, a number a typed one, a string the untyped form (enums come by name
 * either way), `{latitude, longitude}` a location. Anything else is unreadable (undefined).
 */
export function mqttValueAsDatum(value: unknown): Record<string, unknown> | undefined {
  if (value === null) return { invalid: true };
  if (typeof value === 'number') return { doubleValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (isRecord(value) && 'latitude' in value && 'longitude' in value) return { locationValue: value };
  return undefined;
}

/**
 * What a connectivity event says about the vehicle's link: connected is online, disconnected offline (the vehicle
 * went quiet on purpose: asleep or out of coverage, fleet-telemetry does not say which). UNKNOWN says nothing.
 */
export function connectivityStateOf(status: unknown): 'online' | 'offline' | undefined {
  const byEvent: Partial<Record<ConnectivityEvent, 'online' | 'offline'>> = { CONNECTED: 'online', DISCONNECTED: 'offline' };
  return typeof status === 'string' && Object.hasOwn(byEvent, status) ? byEvent[status as ConnectivityEvent] : undefined;
}
