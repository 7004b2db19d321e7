/**
 * Pure mapping from MyGeotab entities to canonical readings, one DeviceReadings per Geotab device id. Units follow
 * MyGeotab's metric rule (SDK guide "Concepts", unit of measure: metres, km/h) and the diagnostic table of
 * shared/reference/provider-wire-formats.md §2 and §5.
 *
 * An entity that cannot be read (wrong shape, unreadable time, a value outside its encoding) is skipped and
 * counted; it never stops the rest of the page. Diagnostics Fleetwire does not map are counted as ignored: a
 * StatusData feed carries every diagnostic the device reports. Values are not bounds-checked here: a reading
 * outside the catalogue's bounds reaches ingest, which rejects it visibly (`invalid_value`).
 *
 * Several diagnostics can report one signal (five odometers, two charging states). A vehicle's sources disagree
 * (a raw J1939 distance has no odometer offset, the corrected odometer has), and alternating between them would
 * make the odometer jump, so each device follows the highest-ranked source that reported within `sourceHoldMs`
 * of the reading; the others are counted as superseded. What each device last reported per source is kept in a
 * SourceMemory the caller passes from page to page (the adapter keeps it in the connection's session).
 */
import type { ChargingState } from '../../canonical/signals.ts';
import {
  chargingSessionSchema,
  externalDeviceIdSchema,
  parseTimestamp,
  type CanonicalChargingSession,
  type CanonicalReading,
} from '../../canonical/update.ts';
import type { DeviceReadings } from '../poll-adapter.ts';
import type { BatteryPowerSign } from './contract.ts';
import { chargeEventSchema, deviceStatusInfoSchema, diagnosticIds, logRecordSchema, statusDataSchema, type ChargeEvent } from './wire.ts';

/** A device's readings, and its charging sessions when the page was of ChargeEvents. */
export interface GeotabDeviceReadings extends DeviceReadings {
  chargingSessions?: CanonicalChargingSession[];
}

export interface MappedEntities {
  devices: GeotabDeviceReadings[];
  /** Entities that could not be read. */
  skipped: number;
  /** Readable StatusData of diagnostics Fleetwire does not map. */
  ignored: number;
  /** Readable StatusData dropped because a higher-ranked source of the same signal reports for the device. */
  superseded: number;
}

/**
 * MyGeotab sends UTC as `yyyy-MM-ddTHH:mm:ss.fffZ`, sometimes with 7 fractional digits. A time without a zone is
 * UTC (the API has no other zone). Times before 1970 are .NET's DateTime.MinValue standing for "never", so
 * they are unreadable rather than very old.
 */
export function toUtcTimestamp(dateTime: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(dateTime)) return undefined;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(dateTime) ? dateTime : `${dateTime}Z`;
  const ms = parseTimestamp(zoned);
  if (ms === undefined || ms < 0) return undefined;
  return new Date(ms).toISOString();
}

/**
 * DiagnosticElectricVehicleChargingStateId. Geotab's KnownId text calls it the charge type (AC or DC); the codes
 * 0 not charging, 1 AC, 2 DC are seen only in third-party code (UNCONFIRMED). Any other code is `unknown`.
 */
export function chargingStateOf(code: number): ChargingState {
  if (code === 0) return 'not_charging';
  if (code === 1 || code === 2) return 'charging';
  return 'unknown';
}

/**
 * DiagnosticElectricVehicleIsChargingId, "the IsCharging signal": a boolean diagnostic, 1 charging and 0 not
 * (Geotab reports booleans as 1/0, as for "Hybrid/electric vehicle detected: 1=true; 0=false"). Anything else is
 * unreadable.
 */
export function isChargingStateOf(code: number): ChargingState | undefined {
  if (code === 1) return 'charging';
  if (code === 0) return 'not_charging';
  return undefined;
}

/**
 * The odometer diagnostics, highest precedence first, all in metres:
 * 1. DiagnosticOdometerId, the corrected ECM odometer (raw × factor + offset): the operator's offset applied.
 * 2. DiagnosticOdometerAdjustmentId, the adjusted odometer itself (not an offset): the ECM odometer plus the GPS
 *    distance since it was last reported, or the GPS odometer where the vehicle reports none; manual odometer
 *    entries are added as this diagnostic.
 * 3. DiagnosticJ1939TotalVehicleDistanceId and 4. DiagnosticJ1708TotalVehicleDistanceId, heavy-duty raw distance.
 * 5. DiagnosticOBDOdometerReaderId, the raw OBD-II odometer.
 * (SDK guide "GO device logging", Odometer; SDK sample displayOdometer.html reads all five as metres.)
 */
export const odometerSources = [
  diagnosticIds.odometer,
  diagnosticIds.odometerAdjustment,
  diagnosticIds.j1939TotalVehicleDistance,
  diagnosticIds.j1708TotalVehicleDistance,
  diagnosticIds.obdOdometer,
] as const;

/** The charging state: the IsCharging boolean first, then the charging-state (charge type) code. */
export const chargingStateSources = [diagnosticIds.isCharging, diagnosticIds.chargingState] as const;

/**
 * How long a source keeps a device after its last reading: longer than the hourly odometer cadence Geotab
 * documents ("logged on ignition on, ignition off and every hour"), short enough that a source which stopped
 * reporting hands over within a shift.
 */
export const defaultSourceHoldMs = 6 * 3600_000;

/** Per device and signal, the newest observed time (ms) of each ranked source; caller-owned, updated in place. */
export type SourceMemory = Map<string, number[]>;

export interface StatusMappingOptions {
  batteryPowerChargingSign?: BatteryPowerSign;
  sources?: SourceMemory;
  sourceHoldMs?: number;
}

type StatusDecoder = (data: number, observedAt: string, options: Required<Pick<StatusMappingOptions, 'batteryPowerChargingSign'>>) => CanonicalReading | undefined;

interface StatusSource {
  decode: StatusDecoder;
  /** The signal's source list and this diagnostic's place in it, when several diagnostics report the signal. */
  rank?: number;
}

const odometerDecoder: StatusDecoder = (metres, observedAt) => ({ signal: 'odometer_km', value: metres / 1000, observedAt });

const statusSources: Record<string, StatusSource> = {
  [diagnosticIds.stateOfCharge]: { decode: (data, observedAt) => ({ signal: 'soc_pct', value: data, observedAt }) },
  ...Object.fromEntries(odometerSources.map((id, rank) => [id, { decode: odometerDecoder, rank }])),
  [diagnosticIds.isCharging]: {
    rank: chargingStateSources.indexOf(diagnosticIds.isCharging),
    decode: (code, observedAt) => {
      const value = isChargingStateOf(code);
      return value === undefined ? undefined : { signal: 'charging_state', value, observedAt };
    },
  },
  [diagnosticIds.chargingState]: {
    rank: chargingStateSources.indexOf(diagnosticIds.chargingState),
    decode: (code, observedAt) => ({ signal: 'charging_state', value: chargingStateOf(code), observedAt }),
  },
  // ASSUMPTION (UNCONFIRMED in the reference): 1 on, 0 off; anything else is unreadable.
  [diagnosticIds.ignition]: {
    decode: (code, observedAt) => (code === 1 || code === 0 ? { signal: 'ignition', value: code === 1, observedAt } : undefined),
  },
  // ASSUMPTION (UNCONFIRMED whether HV pack or 12 V): read as the traction pack, °C.
  [diagnosticIds.batteryTemperature]: { decode: (celsius, observedAt) => ({ signal: 'battery_temp_c', value: celsius, observedAt }) },
  // Watts (UNCONFIRMED unit), with the connection's sign for "into the battery" (contract.ts). Power out of the
  // battery (driving) is no charging power: 0 kW.
  [diagnosticIds.batteryPower]: {
    decode: (watts, observedAt, { batteryPowerChargingSign }) => {
      const intoBattery = batteryPowerChargingSign === 'negative' ? -watts : watts;
      return { signal: 'charge_power_kw', value: Math.max(0, intoBattery / 1000), observedAt };
    },
  },
};

/** Diagnostic id casing differs between Geotab's own samples and typings; match without case. */
const sourceByLowerId = new Map(Object.entries(statusSources).map(([id, source]) => [id.toLowerCase(), source]));

interface Candidate {
  deviceId: string;
  readings: CanonicalReading[] | undefined;
  ranked?: { key: string; rank: number; ms: number };
}

export function mapStatusData(entities: readonly unknown[], options: StatusMappingOptions = {}): MappedEntities {
  const decodeOptions = { batteryPowerChargingSign: options.batteryPowerChargingSign ?? 'negative' };
  const memory = options.sources ?? new Map<string, number[]>();
  const holdMs = options.sourceHoldMs ?? defaultSourceHoldMs;
  const out = new DeviceGroups();
  const candidates: Candidate[] = [];
  for (const entity of entities) {
    const parsed = statusDataSchema.safeParse(entity);
    if (!parsed.success) {
      out.skipped += 1;
      continue;
    }
    const source = sourceByLowerId.get(parsed.data.diagnostic.id.toLowerCase());
    if (!source) {
      out.ignored += 1;
      continue;
    }
    const observedAt = toUtcTimestamp(parsed.data.dateTime);
    const reading = observedAt === undefined ? undefined : source.decode(parsed.data.data, observedAt, decodeOptions);
    const candidate: Candidate = { deviceId: parsed.data.device.id, readings: reading ? [reading] : undefined };
    if (reading && source.rank !== undefined) {
      candidate.ranked = { key: `${parsed.data.device.id}|${reading.signal}`, rank: source.rank, ms: Date.parse(reading.observedAt) };
      remember(memory, candidate.ranked);
    }
    candidates.push(candidate);
  }
  // Memory is updated from the whole page first: a higher-ranked reading later in the page still wins.
  for (const candidate of candidates) {
    if (candidate.ranked && isSuperseded(memory, candidate.ranked, holdMs)) out.superseded += 1;
    else out.addOrSkip(candidate.deviceId, candidate.readings);
  }
  return out.result();
}

function remember(memory: SourceMemory, ranked: { key: string; rank: number; ms: number }): void {
  const seen = memory.get(ranked.key) ?? [];
  seen[ranked.rank] = Math.max(seen[ranked.rank] ?? -Infinity, ranked.ms);
  memory.set(ranked.key, seen);
}

function isSuperseded(memory: SourceMemory, ranked: { key: string; rank: number; ms: number }, holdMs: number): boolean {
  const seen = memory.get(ranked.key) ?? [];
  for (let rank = 0; rank < ranked.rank; rank += 1) {
    const last = seen[rank];
    if (last !== undefined && last >= ranked.ms - holdMs) return true;
  }
  return false;
}

/** A .NET TimeSpan as MyGeotab writes it, `[d.]hh:mm:ss[.fffffff]`, in ms; undefined when unreadable. */
export function timeSpanMs(text: string): number | undefined {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(text);
  if (!m) return undefined;
  const [hours, minutes, seconds] = [Number(m[2]), Number(m[3]), Number(m[4])];
  if (hours > 23 || minutes > 59 || seconds > 59) return undefined;
  const fraction = m[5] ? Number(`0.${m[5]}`) : 0;
  return Math.round(((Number(m[1] ?? 0) * 24 + hours) * 3600 + minutes * 60 + seconds + fraction) * 1000);
}

/**
 * ChargeEvent to a canonical charging session: the session ends `duration` after `startTime`; `energyKwh` is
 * EnergyConsumedKwh, the energy at the charge station interface (the documented field; it includes on-board
 * charger losses); the location is the Coordinate (x longitude, y latitude). A session that fails the canonical
 * schema (a state of charge above 100, an unreadable start) is skipped as a whole.
 */
export function chargingSessionOf(event: ChargeEvent): CanonicalChargingSession | undefined {
  const startedAt = toUtcTimestamp(event.startTime);
  if (startedAt === undefined) return undefined;
  const durationMs = event.duration == null ? undefined : timeSpanMs(event.duration);
  if (event.duration != null && durationMs === undefined) return undefined;
  const session = {
    externalId: event.id,
    startedAt,
    endedAt: durationMs === undefined ? null : new Date(Date.parse(startedAt) + durationMs).toISOString(),
    startSocPct: event.startStateOfCharge ?? null,
    endSocPct: event.endStateOfCharge ?? null,
    energyKwh: event.energyConsumedKwh ?? null,
    peakPowerKw: event.peakPowerKw ?? null,
    location: event.location ? { lat: event.location.y, lon: event.location.x } : null,
  };
  const parsed = chargingSessionSchema.safeParse(session);
  return parsed.success ? parsed.data : undefined;
}

export function mapChargeEvents(entities: readonly unknown[]): MappedEntities {
  const out = new DeviceGroups();
  for (const entity of entities) {
    const parsed = chargeEventSchema.safeParse(entity);
    const session = parsed.success ? chargingSessionOf(parsed.data) : undefined;
    if (!parsed.success || !session) {
      out.skipped += 1;
      continue;
    }
    out.addSessionOrSkip(parsed.data.device.id, session);
  }
  return out.result();
}

/** LogRecord: position and speed (km/h already). */
export function mapLogRecords(entities: readonly unknown[]): MappedEntities {
  const out = new DeviceGroups();
  for (const entity of entities) {
    const parsed = logRecordSchema.safeParse(entity);
    const observedAt = parsed.success ? toUtcTimestamp(parsed.data.dateTime) : undefined;
    if (!parsed.success || observedAt === undefined) {
      out.skipped += 1;
      continue;
    }
    const { latitude, longitude, speed, device } = parsed.data;
    out.addOrSkip(device.id, [
      { signal: 'location', value: { lat: latitude, lon: longitude }, observedAt },
      { signal: 'speed_kph', value: speed, observedAt },
    ]);
  }
  return out.result();
}

/** DeviceStatusInfo: only the heading (`bearing`), at the entity's dateTime; LogRecord carries the rest. */
export function mapDeviceStatusInfos(entities: readonly unknown[]): MappedEntities {
  const out = new DeviceGroups();
  for (const entity of entities) {
    const parsed = deviceStatusInfoSchema.safeParse(entity);
    const observedAt = parsed.success ? toUtcTimestamp(parsed.data.dateTime) : undefined;
    if (!parsed.success || observedAt === undefined) {
      out.skipped += 1;
      continue;
    }
    out.addOrSkip(parsed.data.device.id, [{ signal: 'heading_deg', value: parsed.data.bearing, observedAt }]);
  }
  return out.result();
}

/** Readings grouped per device, in the order the devices first appear. */
class DeviceGroups {
  skipped = 0;
  ignored = 0;
  superseded = 0;
  private readonly byDevice = new Map<string, GeotabDeviceReadings>();

  addOrSkip(deviceId: string, readings: CanonicalReading[] | undefined): void {
    // A device id no binding can hold would make the whole update malformed at ingest: the entity is unreadable,
    // like one without a device.
    if (!readings || !externalDeviceIdSchema.safeParse(deviceId).success) {
      this.skipped += 1;
      return;
    }
    this.deviceOf(deviceId).readings.push(...readings);
  }

  addSessionOrSkip(deviceId: string, session: CanonicalChargingSession): void {
    if (!externalDeviceIdSchema.safeParse(deviceId).success) {
      this.skipped += 1;
      return;
    }
    const device = this.deviceOf(deviceId);
    (device.chargingSessions ??= []).push(session);
  }

  private deviceOf(deviceId: string): GeotabDeviceReadings {
    let device = this.byDevice.get(deviceId);
    if (!device) {
      device = { externalDeviceId: deviceId, readings: [] };
      this.byDevice.set(deviceId, device);
    }
    return device;
  }

  result(): MappedEntities {
    return { devices: [...this.byDevice.values()], skipped: this.skipped, ignored: this.ignored, superseded: this.superseded };
  }
}
