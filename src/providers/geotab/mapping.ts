/**
 * Pure mapping from MyGeotab entities to canonical readings, one DeviceReadings per Geotab device id. Units follow
 * MyGeotab's metric rule (metres, km/h) and the diagnostic table of shared/reference/provider-wire-formats.md §2
 * and §5.
 *
 * An entity that cannot be read (wrong shape, unreadable time, a value outside its encoding) is skipped and
 * counted; it never stops the rest of the page. Diagnostics Fleetwire does not map are counted as ignored: a
 * StatusData feed carries every diagnostic the device reports. Values are not bounds-checked here: a reading
 * outside the catalogue's bounds reaches ingest, which rejects it visibly (`invalid_value`).
 */
import type { ChargingState } from '../../canonical/signals.ts';
import { externalDeviceIdSchema, parseTimestamp, type CanonicalReading } from '../../canonical/update.ts';
import type { DeviceReadings } from '../poll-adapter.ts';
import { deviceStatusInfoSchema, diagnosticIds, logRecordSchema, statusDataSchema, type StatusData } from './wire.ts';

export interface MappedEntities {
  devices: DeviceReadings[];
  /** Entities that could not be read. */
  skipped: number;
  /** Readable StatusData of diagnostics Fleetwire does not map. */
  ignored: number;
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
 * DiagnosticElectricVehicleChargingStateId. ASSUMPTION: the reference marks the encoding UNCONFIRMED (seen only in
 * third-party code); our simulator uses it: 0 not charging, 1 AC charging, 2 DC charging. Any other code is
 * reported as `unknown` rather than guessed.
 */
export function chargingStateOf(code: number): ChargingState {
  if (code === 0) return 'not_charging';
  if (code === 1 || code === 2) return 'charging';
  return 'unknown';
}

type StatusDecoder = (data: number, observedAt: string) => CanonicalReading | undefined;

const statusDecoders: Record<string, StatusDecoder> = {
  [diagnosticIds.stateOfCharge]: (data, observedAt) => ({ signal: 'soc_pct', value: data, observedAt }),
  [diagnosticIds.odometer]: (metres, observedAt) => ({ signal: 'odometer_km', value: metres / 1000, observedAt }),
  [diagnosticIds.chargingState]: (code, observedAt) => ({ signal: 'charging_state', value: chargingStateOf(code), observedAt }),
  // ASSUMPTION (UNCONFIRMED in the reference): 1 on, 0 off; anything else is unreadable.
  [diagnosticIds.ignition]: (code, observedAt) =>
    code === 1 || code === 0 ? { signal: 'ignition', value: code === 1, observedAt } : undefined,
  // ASSUMPTION (UNCONFIRMED whether HV pack or 12 V): read as the traction pack, °C.
  [diagnosticIds.batteryTemperature]: (celsius, observedAt) => ({ signal: 'battery_temp_c', value: celsius, observedAt }),
  // ASSUMPTION (unit and sign UNCONFIRMED): watts, positive into the battery. Discharge is not charging power.
  [diagnosticIds.batteryPower]: (watts, observedAt) => ({ signal: 'charge_power_kw', value: Math.max(0, watts / 1000), observedAt }),
};

/** Diagnostic id casing differs between Geotab's own samples and typings; match without case. */
const decoderByLowerId = new Map(Object.entries(statusDecoders).map(([id, decode]) => [id.toLowerCase(), decode]));

export function mapStatusData(entities: readonly unknown[]): MappedEntities {
  const out = new DeviceGroups();
  for (const entity of entities) {
    const parsed = statusDataSchema.safeParse(entity);
    if (!parsed.success) {
      out.skipped += 1;
      continue;
    }
    const decode = decoderByLowerId.get(parsed.data.diagnostic.id.toLowerCase());
    if (!decode) {
      out.ignored += 1;
      continue;
    }
    out.addOrSkip(parsed.data.device.id, readStatus(parsed.data, decode));
  }
  return out.result();
}

function readStatus(entry: StatusData, decode: StatusDecoder): CanonicalReading[] | undefined {
  const observedAt = toUtcTimestamp(entry.dateTime);
  if (observedAt === undefined) return undefined;
  const reading = decode(entry.data, observedAt);
  return reading ? [reading] : undefined;
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
  private readonly byDevice = new Map<string, CanonicalReading[]>();

  addOrSkip(deviceId: string, readings: CanonicalReading[] | undefined): void {
    // A device id no binding can hold would make the whole update malformed at ingest: the entity is unreadable,
    // like one without a device.
    if (!readings || !externalDeviceIdSchema.safeParse(deviceId).success) {
      this.skipped += 1;
      return;
    }
    const list = this.byDevice.get(deviceId);
    if (list) list.push(...readings);
    else this.byDevice.set(deviceId, [...readings]);
  }

  result(): MappedEntities {
    const devices = [...this.byDevice].map(([externalDeviceId, readings]) => ({ externalDeviceId, readings }));
    return { devices, skipped: this.skipped, ignored: this.ignored };
  }
}
