/**
 * Samsara feed and history items to canonical readings (DESIGN §3, mapping cheat-sheet in
 * provider-wire-formats.md §5). Pure: no I/O, no clock. Every stat entry keeps its own `time` as observedAt,
 * because Samsara time-stamps each stat independently.
 *
 * What cannot be read (an item without an id, an entry with a bad time or an unknown enum value) is skipped and
 * counted, never thrown: one odd entry must not cost the rest of the page. Values that are readable but out of
 * bounds (a latitude of 91) pass through, so ingest rejects them with a reason the operator can see.
 */
import type { ChargingState } from '../../canonical/signals.ts';
import { externalDeviceIdSchema, parseTimestamp, type CanonicalReading } from '../../canonical/update.ts';
import { isRecord } from '../json-values.ts';
import type { DeviceReadings } from '../poll-adapter.ts';
import { engineStateEntrySchema, evChargingStatusCodes, gpsPointSchema, timedNumberSchema, type EngineStateValue } from './wire.ts';

export interface MappedStats {
  /** One entry per Samsara vehicle id that had at least one readable reading, in first-seen order. */
  devices: DeviceReadings[];
  /** Items, stats and entries that could not be read. */
  skipped: number;
  /** Vehicle ids of this page with OBD odometer entries (readable or not), in first-seen order. */
  obdOdometerVehicles: string[];
}

export interface MapOptions {
  /**
   * Vehicles known to report `obdOdometerMeters` (from earlier pages). Their `gpsOdometerMeters` entries are never
   * mapped, also on a page that happens to carry only the GPS one, so a vehicle's odometer never switches source
   * back and forth.
   */
  obdOdometerVehicles?: ReadonlySet<string>;
}

export const kphPerMph = 1.609344;

const chargingStates: Record<number, ChargingState> = {
  [evChargingStatusCodes.charging]: 'charging',
  [evChargingStatusCodes.notCharging]: 'not_charging',
  [evChargingStatusCodes.unknown]: 'unknown',
};

const ignitionOf: Record<EngineStateValue, boolean> = { On: true, Idle: true, Off: false };

/** Maps the `data` items of one feed or history response. */
export function mapVehicleStats(items: readonly unknown[], options: MapOptions = {}): MappedStats {
  const byDevice = new Map<string, CanonicalReading[]>();
  const knownObd = options.obdOdometerVehicles ?? new Set<string>();
  // First pass: which vehicles carry OBD odometer entries anywhere on this page (one vehicle can span two items).
  const obdHere = new Set<string>();
  for (const item of items) {
    if (!isRecord(item) || !hasEntries(item.obdOdometerMeters)) continue;
    const id = externalDeviceIdSchema.safeParse(item.id);
    if (id.success) obdHere.add(id.data);
  }
  let skipped = 0;
  for (const item of items) {
    const id = isRecord(item) ? externalDeviceIdSchema.safeParse(item.id) : undefined;
    if (!isRecord(item) || !id?.success) {
      skipped += 1;
      continue;
    }
    const odometerKey = knownObd.has(id.data) || obdHere.has(id.data) ? 'obdOdometerMeters' : 'gpsOdometerMeters';
    const { readings, skipped: itemSkipped } = mapItem(item, odometerKey);
    skipped += itemSkipped;
    if (readings.length === 0) continue;
    const known = byDevice.get(id.data);
    if (known) known.push(...readings);
    else byDevice.set(id.data, readings);
  }
  return {
    devices: [...byDevice].map(([externalDeviceId, readings]) => ({ externalDeviceId, readings })),
    skipped,
    obdOdometerVehicles: [...obdHere],
  };
}

function mapItem(item: Record<string, unknown>, odometerKey: 'obdOdometerMeters' | 'gpsOdometerMeters'): { readings: CanonicalReading[]; skipped: number } {
  const readings: CanonicalReading[] = [];
  let skipped = 0;
  const each = (key: string, read: (entry: unknown) => CanonicalReading[] | undefined) => {
    const list = item[key];
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) {
      skipped += 1;
      return;
    }
    for (const entry of list) {
      const mapped = read(entry);
      if (mapped) readings.push(...mapped);
      else skipped += 1;
    }
  };

  each('gps', readGps);
  each('evStateOfChargeMilliPercent', (e) => readNumber(e, (v) => ({ signal: 'soc_pct', value: v / 1000 })));
  each('evChargingStatus', (e) =>
    readNumber(e, (v) => {
      const state = chargingStates[v];
      return state === undefined ? undefined : { signal: 'charging_state', value: state };
    }),
  );
  // The GPS odometer ("when OBD odometer cannot be pulled automatically", and only after a manual reading was
  // entered: SDK GetVehicleStatsFeedRequest `types` text) is the fallback for vehicles without OBD coverage, never a
  // second opinion next to the OBD value: a vehicle with OBD entries on this page or an earlier one maps OBD only.
  each(odometerKey, (e) => readNumber(e, (v) => ({ signal: 'odometer_km', value: v / 1000 })));
  each('engineStates', readEngineState);
  each('evAverageBatteryTemperatureMilliCelsius', (e) => readNumber(e, (v) => ({ signal: 'battery_temp_c', value: v / 1000 })));
  return { readings, skipped };
}

/** A reading before it gets its time: Omit applied to each signal's variant, so signal and value stay paired. */
type Unstamped = CanonicalReading extends infer R ? (R extends unknown ? Omit<R, 'observedAt'> : never) : never;

function readNumber(entry: unknown, convert: (value: number) => Unstamped | undefined): CanonicalReading[] | undefined {
  const parsed = timedNumberSchema.safeParse(entry);
  if (!parsed.success) return undefined;
  const observedAt = normalizeTime(parsed.data.time);
  const reading = convert(parsed.data.value);
  if (observedAt === undefined || reading === undefined) return undefined;
  return [{ ...reading, observedAt }];
}

function readEngineState(entry: unknown): CanonicalReading[] | undefined {
  const parsed = engineStateEntrySchema.safeParse(entry);
  if (!parsed.success) return undefined;
  const observedAt = normalizeTime(parsed.data.time);
  if (observedAt === undefined) return undefined;
  return [{ signal: 'ignition', value: ignitionOf[parsed.data.value], observedAt }];
}

function readGps(entry: unknown): CanonicalReading[] | undefined {
  const parsed = gpsPointSchema.safeParse(entry);
  if (!parsed.success) return undefined;
  const point = parsed.data;
  const observedAt = normalizeTime(point.time);
  if (observedAt === undefined) return undefined;
  const readings: CanonicalReading[] = [{ signal: 'location', value: { lat: point.latitude, lon: point.longitude }, observedAt }];
  if (point.headingDegrees !== undefined) readings.push({ signal: 'heading_deg', value: point.headingDegrees, observedAt });
  if (point.speedMilesPerHour !== undefined) {
    // Past ~1.1e308 mph the conversion overflows to Infinity: not a value ingest can show the operator, so that
    // speed is left out; the point's location and heading still map.
    const kph = roundTo(point.speedMilesPerHour * kphPerMph, 2);
    if (Number.isFinite(kph)) readings.push({ signal: 'speed_kph', value: kph, observedAt });
  }
  return readings;
}

/** UTC RFC 3339 with `Z`, or undefined when the text is not a real instant with a zone. */
function normalizeTime(time: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(time)) return undefined;
  const ms = parseTimestamp(time);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function roundTo(value: number, digits: number): number {
  const factor = 10 ** digits;
  // A number too large to scale has no fraction left to round (and scaling it would overflow to Infinity).
  if (!Number.isFinite(value * factor)) return value;
  return Math.round(value * factor) / factor;
}

function hasEntries(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0;
}
