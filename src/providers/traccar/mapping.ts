/**
 * Traccar Position -> canonical readings (reference/provider-wire-formats.md §3a; traccar/traccar model/Position.java
 * for the attribute keys and their units). Pure: no I/O, no clock. The fix (latitude, longitude, speed in knots,
 * course) maps always; attributes map as the connection's attribute sources say (options.ts: by default the
 * tracker's own battery, the odometer and the ignition, never the traction battery). A field that is missing, of
 * the wrong type or outside the signal catalogue's bounds is skipped on its own; the rest of the position still
 * maps. A position without a usable device or fix time maps to nothing, with the reason.
 */
import type { ChargingState } from '../../canonical/signals.ts';
import { checkSignalValue, type SignalName } from '../../canonical/signals.ts';
import { externalDeviceIdSchema, parseTimestamp, type CanonicalReading } from '../../canonical/update.ts';
import { isRecord } from '../json-values.ts';
import { defaultAttributeSources, type AttributeSources } from './options.ts';

const kphPerKnot = 1.852;

export type PositionMapping =
  | { ok: true; externalDeviceId: string; readings: CanonicalReading[] }
  | { ok: false; reason: string };

/**
 * Maps one position. `uniqueIdOf` resolves Traccar's numeric deviceId to the device's uniqueId, which is the id
 * operators bind (the tracker's IMEI), unlike deviceId, which is an internal row number of one Traccar server.
 */
export function mapPosition(
  position: unknown,
  uniqueIdOf: (deviceId: number) => string | undefined,
  sources: Readonly<AttributeSources> = defaultAttributeSources,
): PositionMapping {
  if (!isRecord(position)) return { ok: false, reason: 'position is not an object' };
  const deviceId = position.deviceId;
  if (typeof deviceId !== 'number' || !Number.isSafeInteger(deviceId)) return { ok: false, reason: 'position has no numeric deviceId' };
  const externalDeviceId = uniqueIdOf(deviceId);
  if (externalDeviceId === undefined) return { ok: false, reason: `position for deviceId ${deviceId}, which is not known yet` };
  // A uniqueId ingest and bindings refuse (`uniqueIdOf` need not be the learned map) would make the whole update
  // malformed; the position is unreadable instead, and counted.
  if (!externalDeviceIdSchema.safeParse(externalDeviceId).success) return { ok: false, reason: `deviceId ${deviceId} has a uniqueId that is not a usable device id` };
  const observedAt = utcTimestamp(position.fixTime);
  if (observedAt === undefined) return { ok: false, reason: `position of deviceId ${deviceId} has no valid fixTime` };

  const readings: CanonicalReading[] = [];
  const add = (signal: SignalName, value: unknown) => {
    if (value === undefined) return;
    const check = checkSignalValue(signal, value);
    if (check.ok) readings.push({ signal, value: check.value, observedAt } as CanonicalReading);
  };

  // valid: false means the tracker had no GPS fix and repeated its last coordinates: they were not observed at
  // fixTime, so they are not readings. The attributes come from the vehicle bus and still are.
  if (position.valid !== false) {
    const lat = finite(position.latitude);
    const lon = finite(position.longitude);
    if (lat !== undefined && lon !== undefined) add('location', { lat, lon });
    const knots = finite(position.speed);
    if (knots !== undefined) add('speed_kph', round3(knots * kphPerKnot));
    add('heading_deg', finite(position.course));
  }

  const attributes = isRecord(position.attributes) ? position.attributes : {};
  const raw = (attribute: string): unknown => (Object.hasOwn(attributes, attribute) ? attributes[attribute] : undefined);
  const { soc_pct, tracker_battery_pct, odometer_km, range_km, charge_power_kw, battery_temp_c, charging_state, plugged_in, ignition } = sources;
  if (soc_pct) add('soc_pct', scaled(raw(soc_pct.attribute), soc_pct.scale * percentFactor[soc_pct.unit]));
  if (tracker_battery_pct) add('tracker_battery_pct', scaled(raw(tracker_battery_pct.attribute), tracker_battery_pct.scale * percentFactor[tracker_battery_pct.unit]));
  if (odometer_km) add('odometer_km', scaled(raw(odometer_km.attribute), odometer_km.scale * kmFactor[odometer_km.unit]));
  if (range_km) add('range_km', scaled(raw(range_km.attribute), range_km.scale * kmFactor[range_km.unit]));
  if (charge_power_kw) add('charge_power_kw', scaled(raw(charge_power_kw.attribute), charge_power_kw.scale * kwFactor[charge_power_kw.unit]));
  if (battery_temp_c) add('battery_temp_c', scaled(raw(battery_temp_c.attribute), battery_temp_c.scale));
  if (charging_state) add('charging_state', chargingStateOf(raw(charging_state.attribute), charging_state.values));
  if (plugged_in) add('plugged_in', flagOf(raw(plugged_in.attribute)));
  if (ignition) add('ignition', flagOf(raw(ignition.attribute)));
  // `charge` is deliberately not read: it is the tracker's own battery charging (Traccar Client's phone on its
  // cable), not the vehicle's.

  return { ok: true, externalDeviceId, readings };
}

/**
 * An RFC 3339 time with a zone (Traccar writes `+00:00`, older servers `+0000`) as UTC with `Z`, or undefined.
 * A time without a zone is refused: it would be read in this process's local zone.
 */
function utcTimestamp(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|z|[+-]\d{2}:?\d{2})$/.exec(text);
  if (!match) return undefined;
  const zone = match[2]!.length === 5 ? `${match[2]!.slice(0, 3)}:${match[2]!.slice(3)}` : match[2]!.toUpperCase();
  const ms = parseTimestamp(`${match[1]}${zone}`);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

const percentFactor = { percent: 1, fraction: 100 } as const;
const kmFactor = { m: 0.001, km: 1, mi: 1.609344 } as const;
const kwFactor = { kW: 1, W: 0.001 } as const;

/** A JSON number times `factor`, to 3 decimals; anything else (strings included) is undefined. */
function scaled(value: unknown, factor: number): number | undefined {
  const number = finite(value);
  return number === undefined ? undefined : round3(number * factor);
}

/** true/false, or a number: 0 is false, any other finite number true. */
function flagOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  const number = finite(value);
  return number === undefined ? undefined : number !== 0;
}

function chargingStateOf(value: unknown, values: { charging: unknown[]; not_charging: unknown[]; complete: unknown[] } | undefined): ChargingState | undefined {
  if (value === undefined || value === null) return undefined;
  if (values) {
    for (const state of ['charging', 'not_charging', 'complete'] as const) if (values[state].includes(value)) return state;
    return undefined;
  }
  if (value === true || value === 1) return 'charging';
  if (value === false || value === 0) return 'not_charging';
  return undefined;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
