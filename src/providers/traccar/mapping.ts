/**
 * Traccar Position -> canonical readings (reference/provider-wire-formats.md §3a and the Traccar column of §5).
 * Pure: no I/O, no clock. A field that is missing, of the wrong type or outside the signal catalogue's bounds is
 * skipped on its own; the rest of the position still maps. A position without a usable device or fix time maps
 * to nothing, with the reason.
 */
import { checkSignalValue, type SignalName } from '../../canonical/signals.ts';
import { externalDeviceIdSchema, parseTimestamp, type CanonicalReading } from '../../canonical/update.ts';
import { isRecord } from '../json-values.ts';

const kphPerKnot = 1.852;

export type PositionMapping =
  | { ok: true; externalDeviceId: string; readings: CanonicalReading[] }
  | { ok: false; reason: string };

/**
 * Maps one position. `uniqueIdOf` resolves Traccar's numeric deviceId to the device's uniqueId, which is the id
 * operators bind (the tracker's IMEI), unlike deviceId, which is an internal row number of one Traccar server.
 */
export function mapPosition(position: unknown, uniqueIdOf: (deviceId: number) => string | undefined): PositionMapping {
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
  add('soc_pct', finite(attributes.batteryLevel));
  // Only `odometer` (the vehicle's own). `totalDistance` is Traccar's GPS distance since the device was added:
  // a different counter, and mixing the two would make the odometer jump.
  const odometerM = finite(attributes.odometer);
  if (odometerM !== undefined) add('odometer_km', round3(odometerM / 1000));
  if (typeof attributes.ignition === 'boolean') add('ignition', attributes.ignition);
  if (typeof attributes.charge === 'boolean') add('charging_state', attributes.charge ? 'charging' : 'not_charging');

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

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
