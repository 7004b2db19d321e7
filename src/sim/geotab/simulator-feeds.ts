/**
 * What the Geotab simulator serves, built from a fleet model's sample log: StatusData and LogRecord feed pages,
 * DeviceStatusInfo and Device lists, each entity paired with the canonical readings it carries, converted back by
 * the simulator's own arithmetic (not the adapter's mapping) for the ground truth.
 *
 * Versions are 16-hex-digit positions in the fleet log: a page's `toVersion` is the sequence number after the
 * last sample it consumed, so both feeds share one version space and a version stays valid across pages.
 */
import type { FleetModel, Sample, VehicleIdentity } from '../fleet-model.ts';
import type { ServedReading } from '../ground-truth.ts';
import { diagnosticIds, type Device, type DeviceStatusInfo, type LogRecord, type StatusData } from '../../providers/geotab/wire.ts';

export function versionOf(seq: number): string {
  return seq.toString(16).padStart(16, '0');
}

export function seqOfVersion(version: string): number | undefined {
  if (!/^[0-9a-f]{16}$/i.test(version)) return undefined;
  const seq = Number.parseInt(version, 16);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

interface Latest {
  heading?: { deg: number; ms: number };
  location?: { lat: number; lon: number; ms: number };
  speedKph?: number;
}

/**
 * What the log knows beyond single samples. A LogRecord needs a speed with every position, but the model logs
 * speed and position as separate samples (and not always together), so each position gets the vehicle's newest
 * speed at that moment (one logged in the same step counts). DeviceStatusInfo needs each vehicle's latest state.
 * Kept incrementally, so answers do not depend on how a client pages.
 */
export class FleetIndex {
  private indexedSeq: number;
  private readonly speedAtLocation = new Map<number, number>();
  private readonly speedNow = new Map<number, number>();
  readonly latest = new Map<number, Latest>();

  constructor(readonly fleet: FleetModel) {
    this.indexedSeq = fleet.startSeq;
  }

  /** Indexes the samples logged since the last call; call after every `advanceTo`. */
  catchUp(): void {
    const samples = this.fleet.samplesFrom(this.indexedSeq);
    // A model step logs one vehicle's samples of one instant contiguously: handle them as one run.
    let runStart = 0;
    while (runStart < samples.length) {
      const first = samples[runStart]!;
      let runEnd = runStart + 1;
      while (runEnd < samples.length && samples[runEnd]!.vehicle === first.vehicle && samples[runEnd]!.observedAtMs === first.observedAtMs) {
        runEnd += 1;
      }
      this.indexRun(samples.slice(runStart, runEnd));
      runStart = runEnd;
    }
    this.indexedSeq = this.fleet.endSeq;
    for (const seq of this.speedAtLocation.keys()) {
      if (seq >= this.fleet.startSeq) break;
      this.speedAtLocation.delete(seq);
    }
  }

  speedAt(locationSeq: number): number {
    return this.speedAtLocation.get(locationSeq) ?? 0;
  }

  private indexRun(run: Sample[]): void {
    const vehicle = run[0]!.vehicle;
    const latest = this.latest.get(vehicle) ?? {};
    this.latest.set(vehicle, latest);
    for (const sample of run) {
      if (sample.signal === 'speed_kph') this.speedNow.set(vehicle, sample.value);
    }
    const speed = this.speedNow.get(vehicle) ?? 0;
    for (const sample of run) {
      if (sample.signal === 'location') {
        this.speedAtLocation.set(sample.seq, speed);
        if (!latest.location || sample.observedAtMs >= latest.location.ms) latest.location = { ...sample.value, ms: sample.observedAtMs };
      } else if (sample.signal === 'heading_deg') {
        if (!latest.heading || sample.observedAtMs >= latest.heading.ms) latest.heading = { deg: sample.value, ms: sample.observedAtMs };
      }
    }
    latest.speedKph = speed;
  }
}

export interface FeedQuery {
  fromSeq: number;
  /** Only when the client sent no version. */
  fromDateMs?: number | undefined;
  limit: number;
}

export interface Served<T> {
  data: T;
  served: ServedReading[];
}

export interface FeedPage<T> extends Served<T[]> {
  toVersion: string;
}

type EntityOf<T> = (sample: Sample, vehicle: VehicleIdentity) => Served<T> | undefined;

function scanFeed<T>(index: FleetIndex, query: FeedQuery, entityOf: EntityOf<T>): FeedPage<T> {
  const { fleet } = index;
  let seq = Math.min(Math.max(query.fromSeq, fleet.startSeq), fleet.endSeq);
  const data: T[] = [];
  const served: ServedReading[] = [];
  while (seq < fleet.endSeq && data.length < query.limit) {
    const chunk = fleet.samplesFrom(seq, 4096);
    if (chunk.length === 0) break;
    for (const sample of chunk) {
      seq = sample.seq + 1;
      if (query.fromDateMs !== undefined && sample.observedAtMs < query.fromDateMs) continue;
      const entity = entityOf(sample, fleet.vehicles[sample.vehicle]!);
      if (!entity) continue;
      data.push(entity.data);
      served.push(...entity.served);
      if (data.length >= query.limit) break;
    }
  }
  return { data, served, toVersion: versionOf(seq) };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Every diagnostic Geotab would report for this sample, in Geotab units, and what it means in canonical terms. */
function diagnosticOf(sample: Sample, vehicle: VehicleIdentity): { id: string; data: number; back: unknown } | undefined {
  switch (sample.signal) {
    case 'soc_pct':
      return { id: diagnosticIds.stateOfCharge, data: sample.value, back: sample.value };
    case 'odometer_km': {
      const metres = Math.round(sample.value * 1000);
      return { id: diagnosticIds.odometer, data: metres, back: metres / 1000 };
    }
    case 'charging_state': {
      // Our encoding (UNCONFIRMED upstream): 0 not charging, 1 AC, 2 DC. Vans charge on AC, buses and trucks on DC.
      const code = sample.value === 'charging' ? (vehicle.kind === 'van' ? 1 : 2) : 0;
      return { id: diagnosticIds.chargingState, data: code, back: code === 0 ? 'not_charging' : 'charging' };
    }
    case 'ignition': {
      const code = sample.value ? 1 : 0;
      return { id: diagnosticIds.ignition, data: code, back: code === 1 };
    }
    case 'battery_temp_c':
      return { id: diagnosticIds.batteryTemperature, data: sample.value, back: sample.value };
    case 'charge_power_kw': {
      // Watts, positive into the battery (our assumption; unit and sign are UNCONFIRMED upstream).
      const watts = Math.round(sample.value * 1000);
      return { id: diagnosticIds.batteryPower, data: watts, back: Math.max(0, watts / 1000) };
    }
    default:
      return undefined;
  }
}

export function statusDataPage(index: FleetIndex, account: string, query: FeedQuery): FeedPage<StatusData> {
  return scanFeed(index, query, (sample, vehicle) => {
    const diagnostic = diagnosticOf(sample, vehicle);
    if (!diagnostic) return undefined;
    const entity: StatusData = {
      id: `a${sample.seq.toString(36)}`,
      dateTime: iso(sample.observedAtMs),
      data: diagnostic.data,
      device: { id: vehicle.geotabId },
      diagnostic: { id: diagnostic.id },
    };
    const served = [{ account, externalDeviceId: vehicle.geotabId, signal: sample.signal, value: diagnostic.back, observedAtMs: sample.observedAtMs }];
    return { data: entity, served };
  });
}

export function logRecordPage(index: FleetIndex, account: string, query: FeedQuery): FeedPage<LogRecord> {
  return scanFeed(index, query, (sample, vehicle) => {
    if (sample.signal !== 'location') return undefined;
    const speed = index.speedAt(sample.seq);
    const entity: LogRecord = {
      id: `b${sample.seq.toString(36)}`,
      dateTime: iso(sample.observedAtMs),
      latitude: sample.value.lat,
      longitude: sample.value.lon,
      speed,
      device: { id: vehicle.geotabId },
    };
    const at = { account, externalDeviceId: vehicle.geotabId, observedAtMs: sample.observedAtMs };
    const served: ServedReading[] = [
      { ...at, signal: 'location', value: { lat: entity.latitude, lon: entity.longitude } },
      { ...at, signal: 'speed_kph', value: speed },
    ];
    return { data: entity, served };
  });
}

/** One DeviceStatusInfo per vehicle that has reported a heading; dateTime is that heading's time. */
export function deviceStatusInfos(index: FleetIndex, account: string): Served<DeviceStatusInfo[]> {
  const data: DeviceStatusInfo[] = [];
  const served: ServedReading[] = [];
  index.fleet.vehicles.forEach((vehicle, i) => {
    const latest = index.latest.get(i);
    if (!latest?.heading) return;
    const phase = index.fleet.state(i).phase;
    data.push({
      id: `dsi${vehicle.geotabId}`,
      bearing: latest.heading.deg,
      dateTime: iso(latest.heading.ms),
      device: { id: vehicle.geotabId },
      latitude: latest.location?.lat ?? 0,
      longitude: latest.location?.lon ?? 0,
      speed: latest.speedKph ?? 0,
      isDeviceCommunicating: phase !== 'asleep',
      isDriving: phase === 'driving' || phase === 'returning',
      currentStateDuration: '00:00:00',
    });
    served.push({ account, externalDeviceId: vehicle.geotabId, signal: 'heading_deg', value: latest.heading.deg, observedAtMs: latest.heading.ms });
  });
  return { data, served };
}

export function devices(fleet: FleetModel): Device[] {
  return fleet.vehicles.map((vehicle) => ({
    id: vehicle.geotabId,
    name: vehicle.name,
    serialNumber: `G9${vehicle.geotabId.toUpperCase().padStart(10, '0')}`,
    vehicleIdentificationNumber: vehicle.vin,
  }));
}
