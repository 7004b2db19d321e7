/**
 * The signal catalogue (DESIGN §3): every signal Fleetwire knows, its value type, unit and physical bounds.
 * Units are in the names. Adding a signal is one entry here: ingest, storage (jsonb values) and the published
 * JSON Schema all follow from it.
 */
import { z } from 'zod';

export const chargingStates = ['charging', 'not_charging', 'complete', 'unknown'] as const;
export type ChargingState = (typeof chargingStates)[number];

/**
 * The vehicle's own link to its telematics service, as the provider reports it (Tesla's connectivity messages):
 * a vehicle that went offline or to sleep is quiet on purpose, which is not a failing connection.
 */
export const connectivityStates = ['online', 'offline', 'asleep'] as const;
export type ConnectivityState = (typeof connectivityStates)[number];

function bounded(min: number, max: number) {
  return z.number().min(min).max(max);
}

export const locationSchema = z.object({ lat: bounded(-90, 90), lon: bounded(-180, 180) }).strict();
const location = locationSchema;

/**
 * One entry per signal. `value` is the schema of a valid value; `unit` is shown to people. `nonDecreasing` marks
 * a counter that never runs backwards in observed time: the ingest handler rejects a reading that contradicts the
 * snapshot by more than `tolerance` as `implausible_value`.
 */
export const signalCatalogue = {
  soc_pct: { value: bounded(0, 100), unit: '%', description: 'Traction battery state of charge' },
  odometer_km: {
    value: bounded(0, 10_000_000),
    unit: 'km',
    description: 'Odometer',
    nonDecreasing: { tolerance: 1 },
  },
  location: { value: location, unit: 'WGS84 degrees', description: 'GPS position' },
  heading_deg: { value: bounded(0, 360), unit: 'deg', description: 'Heading, clockwise from north' },
  speed_kph: { value: bounded(0, 400), unit: 'km/h', description: 'Vehicle speed' },
  charging_state: { value: z.enum(chargingStates), unit: '', description: 'Charging state' },
  plugged_in: { value: z.boolean(), unit: '', description: 'Charge cable connected' },
  range_km: { value: bounded(0, 2000), unit: 'km', description: 'Estimated remaining range' },
  battery_temp_c: { value: bounded(-60, 100), unit: '°C', description: 'Traction battery temperature' },
  ignition: { value: z.boolean(), unit: '', description: 'Ignition or drive state on' },
  charge_power_kw: {
    value: bounded(0, 4000),
    unit: 'kW',
    description: 'Power flowing into the battery while charging',
  },
  tracker_battery_pct: {
    value: bounded(0, 100),
    unit: '%',
    description: "The tracking device's own battery (a tracker's or a phone's), not the traction battery",
  },
  connectivity_state: {
    value: z.enum(connectivityStates),
    unit: '',
    description: "The vehicle's link to its telematics service: online, offline or asleep",
  },
} as const;

export type SignalName = keyof typeof signalCatalogue;
export const signalNames = Object.keys(signalCatalogue) as SignalName[];

export type SignalValue<S extends SignalName> = z.infer<(typeof signalCatalogue)[S]['value']>;
export type AnySignalValue = { [S in SignalName]: SignalValue<S> }[SignalName];

/** The counter rule of a signal, if it has one. */
export function nonDecreasingRule(signal: SignalName): { tolerance: number } | undefined {
  const entry = signalCatalogue[signal] as { nonDecreasing?: { tolerance: number } };
  return entry.nonDecreasing;
}

export function isSignalName(name: string): name is SignalName {
  return Object.hasOwn(signalCatalogue, name);
}

export type ValueCheck =
  | { ok: true; value: AnySignalValue }
  | { ok: false; reason: 'unknown_signal' | 'invalid_value'; detail: string };

/** Checks a value against the catalogue: the signal exists, the type is right and the value is in bounds. */
export function checkSignalValue(signal: string, value: unknown): ValueCheck {
  if (!isSignalName(signal)) {
    return { ok: false, reason: 'unknown_signal', detail: `signal ${JSON.stringify(signal.slice(0, 64))} is not in the catalogue` };
  }
  const parsed = signalCatalogue[signal].value.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return { ok: false, reason: 'invalid_value', detail: `${signal}${where}: ${issue?.message ?? 'invalid value'}` };
  }
  return { ok: true, value: parsed.data as AnySignalValue };
}
