/**
 * The simulator's side of the Samsara units: fleet-model samples to Samsara stat entries (milli-percent, mph,
 * metres, milli-degrees Celsius, engine state words, charging codes), and each entry back to canonical readings for
 * the ground truth. The way back is deliberately this file's own arithmetic, not the adapter's mapping, so the
 * end-to-end tests compare two independent conversions.
 */
import type { SignalName } from '../../canonical/signals.ts';
import type { FleetModel, Sample } from '../fleet-model.ts';
import type { ServedReading } from '../ground-truth.ts';
import type { EngineStateEntry, GpsPoint, SamsaraStatType, TimedNumber } from '../../providers/samsara/wire.ts';

/** Readings as served, before the account is known. */
export type Served = Omit<ServedReading, 'account'>;

/**
 * The types the simulator serves, and the model signal each is drawn from. Samsara has no plugged-in, range or
 * charge-power stat, so those model signals are never served. Every other documented type (fuel, engine hours,
 * aux inputs, spreaders...) is a valid request that an electric fleet has no data for: it is answered with no
 * entries, never with a 400.
 */
export const servedTypeSource = {
  gps: 'location',
  evStateOfChargeMilliPercent: 'soc_pct',
  evChargingStatus: 'charging_state',
  obdOdometerMeters: 'odometer_km',
  // The simulated vehicles have had a manual odometer reading entered, so both odometers agree where both exist.
  gpsOdometerMeters: 'odometer_km',
  engineStates: 'ignition',
  evAverageBatteryTemperatureMilliCelsius: 'battery_temp_c',
  ecuSpeedMph: 'speed_kph',
} as const satisfies Partial<Record<SamsaraStatType, SignalName>>;

/**
 * Vehicles without OBD odometer coverage: Samsara omits `obdOdometerMeters` for them ("If Samsara does not have
 * diagnostic coverage for a particular vehicle, the value for this stat type will be omitted", SDK `types` text),
 * and their `gpsOdometerMeters` is the only odometer. One vehicle in four, so every fleet has some.
 */
export function hasObdOdometer(vehicleIndex: number): boolean {
  return vehicleIndex % 4 !== 3;
}

export type ServedType = keyof typeof servedTypeSource;

export function isServedType(type: SamsaraStatType): type is ServedType {
  return Object.hasOwn(servedTypeSource, type);
}

export type StatEntry = GpsPoint | TimedNumber | EngineStateEntry;

const kphPerMph = 1.609344;

/** Whole seconds as Samsara writes them, `2024-05-01T14:03:10Z`; sub-second times keep their milliseconds. */
export function wireTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** The entry a sample becomes under `type`, and what that entry says in canonical terms. */
export function toEntry(type: ServedType, sample: Sample, motion: MotionIndex, externalDeviceId: string): { entry: StatEntry; served: Served[] } {
  const time = wireTime(sample.observedAtMs);
  const served = (signal: SignalName, value: unknown): Served => ({ externalDeviceId, signal, value, observedAtMs: Date.parse(time) });
  switch (type) {
    case 'gps': {
      const { lat, lon } = sample.value as { lat: number; lon: number };
      const { speedKph, headingDeg } = motion.at(sample.seq);
      const point: GpsPoint = { time, latitude: lat, longitude: lon };
      if (headingDeg !== undefined) point.headingDegrees = headingDeg;
      if (speedKph !== undefined) point.speedMilesPerHour = round(speedKph / kphPerMph, 2);
      point.isEcuSpeed = false;
      const readings = [served('location', { lat: point.latitude, lon: point.longitude })];
      if (point.headingDegrees !== undefined) readings.push(served('heading_deg', point.headingDegrees));
      if (point.speedMilesPerHour !== undefined) readings.push(served('speed_kph', round(point.speedMilesPerHour * kphPerMph, 2)));
      return { entry: point, served: readings };
    }
    case 'evStateOfChargeMilliPercent':
      return milli(time, sample.value as number, (v) => served('soc_pct', v));
    case 'evAverageBatteryTemperatureMilliCelsius':
      return milli(time, sample.value as number, (v) => served('battery_temp_c', v));
    case 'obdOdometerMeters':
    case 'gpsOdometerMeters':
      return milli(time, sample.value as number, (v) => served('odometer_km', v));
    case 'evChargingStatus': {
      // Samsara knows charging, not charging and unknown; a finished charge is "not charging".
      const code = sample.value === 'charging' ? 2 : sample.value === 'unknown' ? 0 : 1;
      const back = code === 2 ? 'charging' : code === 1 ? 'not_charging' : 'unknown';
      return { entry: { time, value: code }, served: [served('charging_state', back)] };
    }
    case 'engineStates': {
      const value = sample.value ? 'On' : 'Off';
      return { entry: { time, value }, served: [served('ignition', value !== 'Off')] };
    }
    case 'ecuSpeedMph':
      // Served, not recorded: the canonical speed comes from the gps point, and a second reading of it at the
      // speed sample's own time would be one no client asking for gps could have.
      return { entry: { time, value: round((sample.value as number) / kphPerMph, 2) }, served: [] };
  }
}

/**
 * A decoration: the value of `type` in `sample` (the vehicle's newest at the time of the entry it rides on), without
 * a time of its own, as the SDK's VehicleStatsDecorations* types have it for gps and the basic types.
 */
export function decorationOf(type: ServedType, sample: Sample, motion: MotionIndex): Record<string, unknown> {
  if (type === 'gps') {
    const { time: _time, ...point } = toEntry('gps', sample, motion, '').entry as GpsPoint;
    return point;
  }
  const { time: _time, ...rest } = toEntry(type, sample, motion, '').entry as TimedNumber;
  return rest;
}

/** The newest sample of each (vehicle, signal) at or before a time, for decorations. */
export interface LatestIndex {
  catchUp(): void;
  at(vehicle: number, signal: SignalName, atMs: number): Sample | undefined;
}

export function createLatestIndex(fleet: FleetModel): LatestIndex {
  let indexedTo = fleet.startSeq;
  const lists = new Map<string, Sample[]>();
  const keyOf = (vehicle: number, signal: string) => `${vehicle}|${signal}`;
  return {
    catchUp() {
      for (const sample of fleet.samplesFrom(Math.max(indexedTo, fleet.startSeq))) {
        const key = keyOf(sample.vehicle, sample.signal);
        const list = lists.get(key);
        if (list) list.push(sample);
        else lists.set(key, [sample]);
      }
      indexedTo = fleet.endSeq;
      // Samples the log has trimmed go too, but the newest of each list stays: it is still the value at later times.
      for (const list of lists.values()) {
        let drop = 0;
        while (drop < list.length - 1 && list[drop]!.seq < fleet.startSeq) drop += 1;
        if (drop > 0) list.splice(0, drop);
      }
    },
    at(vehicle, signal, atMs) {
      const list = lists.get(keyOf(vehicle, signal));
      if (!list || list.length === 0 || list[0]!.observedAtMs > atMs) return undefined;
      // Each vehicle's samples of one signal are in time order: binary search for the last one at or before atMs.
      let lo = 0;
      let hi = list.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (list[mid]!.observedAtMs <= atMs) lo = mid;
        else hi = mid - 1;
      }
      return list[lo];
    },
  };
}

/** A canonical unit (%, km, °C) as its Samsara milli-unit, and back. */
function milli(time: string, canonical: number, served: (value: number) => Served): { entry: TimedNumber; served: Served[] } {
  const value = Math.round(canonical * 1000);
  return { entry: { time, value }, served: [served(value / 1000)] };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/**
 * Samsara reports position, heading and speed together in one gps point; the fleet model samples them as three
 * signals on their own clocks. A gps point takes the speed and heading sampled since the vehicle's previous
 * position, up to and including its own time, so each speed and heading sample rides on exactly one point, and
 * a parked vehicle's points carry no stale speed.
 */
export interface MotionIndex {
  /** Reads the log up to its end; call after the fleet has advanced. */
  catchUp(): void;
  at(locationSeq: number): { speedKph?: number; headingDeg?: number };
}

export function createMotionIndex(fleet: FleetModel): MotionIndex {
  let indexedTo = fleet.startSeq;
  const bySeq = new Map<number, { speedKph?: number; headingDeg?: number }>();
  const pending = new Map<number, { speedKph?: number; headingDeg?: number }>();
  const open = new Map<number, number>();
  const settle = (vehicle: number) => {
    const seq = open.get(vehicle);
    if (seq === undefined) return;
    bySeq.set(seq, pending.get(vehicle) ?? {});
    pending.delete(vehicle);
    open.delete(vehicle);
  };

  return {
    catchUp() {
      // The fleet model writes one vehicle's samples of one instant together, and steps whole seconds at once, so
      // a position is settled when its block ends: at the next block, or at the end of the log.
      let block: { vehicle: number; ms: number } | undefined;
      for (const sample of fleet.samplesFrom(Math.max(indexedTo, fleet.startSeq))) {
        if (block && (block.vehicle !== sample.vehicle || block.ms !== sample.observedAtMs)) settle(block.vehicle);
        block = { vehicle: sample.vehicle, ms: sample.observedAtMs };
        const motion = pending.get(sample.vehicle) ?? {};
        if (sample.signal === 'speed_kph') pending.set(sample.vehicle, { ...motion, speedKph: sample.value });
        else if (sample.signal === 'heading_deg') pending.set(sample.vehicle, { ...motion, headingDeg: sample.value });
        else if (sample.signal === 'location') {
          settle(sample.vehicle);
          open.set(sample.vehicle, sample.seq);
        }
      }
      if (block) settle(block.vehicle);
      indexedTo = fleet.endSeq;
      // Settled in log order, so the oldest entries come first.
      for (const seq of bySeq.keys()) {
        if (seq >= fleet.startSeq) break;
        bySeq.delete(seq);
      }
    },
    at(locationSeq) {
      return bySeq.get(locationSeq) ?? {};
    },
  };
}
