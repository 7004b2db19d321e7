/**
 * What the Geotab simulator serves, built from a fleet model's sample log: StatusData, LogRecord and ChargeEvent
 * feed pages, DeviceStatusInfo and Device lists, each entity paired with the canonical readings it carries,
 * converted back by the simulator's own arithmetic (not the adapter's mapping) for the ground truth.
 *
 * Versions are 16-hex-digit positions in the fleet log: sequence number × 8 plus the entity's place among those
 * one sample yields (a charging-state sample yields two StatusData), so a page can end between them and every
 * feed shares one version space that stays valid across pages.
 *
 * What the fleet reports follows Geotab's documents, not Fleetwire's mapping:
 * - the odometer through the diagnostic the vehicle has (SDK guide "GO device logging", sample displayOdometer):
 *   buses and trucks the J1939 total vehicle distance, vans the corrected odometer or the OBD odometer; every
 *   third vehicle also has the adjusted odometer (DiagnosticOdometerAdjustmentId, the odometer itself) while its
 *   raw ECM distance reads 1,000 km less (a replaced ECU; MyGeotab's offset makes up the difference), all metres;
 * - charging through IsCharging (1/0) and the charging-state code (0 none, 1 AC, 2 DC; third-party encoding);
 * - battery power in watts, negative while charging (the only evidence: third-party code; Geotab's documents
 *   give no sign);
 * - a ChargeEvent (API reference, objects/ChargeEvent) when a charge ends.
 */
import type { CanonicalChargingSession } from '../../canonical/update.ts';
import type { FleetModel, Sample, VehicleIdentity } from '../fleet-model.ts';
import type { ServedReading } from '../ground-truth.ts';
import { diagnosticIds, type ChargeEvent, type Device, type DeviceStatusInfo, type LogRecord, type StatusData } from '../../providers/geotab/wire.ts';

/** Entities one sample may yield, at most; positions are seq × this plus the entity's index. */
const perSample = 8;

export function versionOf(position: number): string {
  return position.toString(16).padStart(16, '0');
}

export function positionOfVersion(version: string): number | undefined {
  if (!/^[0-9a-f]{16}$/i.test(version)) return undefined;
  const position = Number.parseInt(version, 16);
  return Number.isSafeInteger(position) ? position : undefined;
}

/** The position of a sequence number's first entity. */
export const positionOfSeq = (seq: number) => seq * perSample;

/** The raw ECM distance of vehicles with an adjusted odometer reads this much less (metres). */
export const rawOdometerOffsetM = 1_000_000;

interface Latest {
  heading?: { deg: number; ms: number };
  location?: { lat: number; lon: number; ms: number };
  speedKph?: number;
  socPct?: number;
}

interface OpenCharge {
  startMs: number;
  startSocPct: number | null;
  location: { lat: number; lon: number } | null;
  peakKw: number;
  energyKwh: number;
  power: { kw: number; ms: number } | null;
}

export interface SimulatedChargeEvent {
  entity: ChargeEvent;
  session: CanonicalChargingSession;
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
  private readonly charging = new Map<number, OpenCharge>();
  /** The ChargeEvent each charge-ending sample produced, by that sample's sequence number. */
  private readonly chargeEventAt = new Map<number, SimulatedChargeEvent>();
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
    for (const map of [this.speedAtLocation, this.chargeEventAt]) {
      for (const seq of map.keys()) {
        if (seq >= this.fleet.startSeq) break;
        map.delete(seq);
      }
    }
  }

  speedAt(locationSeq: number): number {
    return this.speedAtLocation.get(locationSeq) ?? 0;
  }

  chargeEventOf(seq: number): SimulatedChargeEvent | undefined {
    return this.chargeEventAt.get(seq);
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
    this.followCharge(run, latest);
  }

  /**
   * A charge opens on a `charging` state and ends on any other, where MyGeotab would calculate its ChargeEvent.
   * One instant's samples are taken in this order whatever their order in the log: the state of charge, a charge
   * that opens, the power, a charge that ends.
   */
  private followCharge(run: Sample[], latest: Latest): void {
    const vehicle = run[0]!.vehicle;
    for (const sample of run) if (sample.signal === 'soc_pct') latest.socPct = sample.value;
    const state = run.find((s) => s.signal === 'charging_state');
    if (state?.value === 'charging' && !this.charging.has(vehicle)) {
      const at = latest.location ? { lat: latest.location.lat, lon: latest.location.lon } : null;
      this.charging.set(vehicle, { startMs: state.observedAtMs, startSocPct: latest.socPct ?? null, location: at, peakKw: 0, energyKwh: 0, power: null });
    }
    const open = this.charging.get(vehicle);
    if (!open) return;
    for (const sample of run) {
      if (sample.signal !== 'charge_power_kw') continue;
      if (open.power) open.energyKwh += (open.power.kw * (sample.observedAtMs - open.power.ms)) / 3600_000;
      open.power = { kw: sample.value, ms: sample.observedAtMs };
      open.peakKw = Math.max(open.peakKw, sample.value);
    }
    if (state && state.value !== 'charging') {
      this.charging.delete(vehicle);
      if (open.power) open.energyKwh += (open.power.kw * (state.observedAtMs - open.power.ms)) / 3600_000;
      this.chargeEventAt.set(state.seq, chargeEventOf(state, this.fleet.vehicles[vehicle]!, open, latest.socPct ?? null));
    }
  }
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** A .NET TimeSpan in its constant format: `[d.]hh:mm:ss[.fffffff]`. */
export function timeSpanOf(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const clock = `${pad(Math.floor(ms / 3600_000) % 24)}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}`;
  const fraction = ms % 1000 === 0 ? '' : `.${String(ms % 1000).padStart(3, '0')}0000`;
  return `${days > 0 ? `${days}.` : ''}${clock}${fraction}`;
}

function chargeEventOf(end: Sample, vehicle: VehicleIdentity, open: OpenCharge, endSocPct: number | null): SimulatedChargeEvent {
  const durationMs = end.observedAtMs - open.startMs;
  const energyKwh = round(open.energyKwh, 3);
  const peakPowerKw = round(open.peakKw, 3);
  const entity: ChargeEvent = {
    id: `ce${end.seq.toString(36)}`,
    startTime: iso(open.startMs),
    duration: timeSpanOf(durationMs),
    device: { id: vehicle.geotabId },
    startStateOfCharge: open.startSocPct,
    endStateOfCharge: endSocPct,
    energyConsumedKwh: energyKwh,
    peakPowerKw,
    // Vans charge on AC depot chargers, buses and trucks on DC.
    chargeType: vehicle.kind === 'van' ? 'AC' : 'DC',
    maxACVoltage: vehicle.kind === 'van' ? 230 : null,
    chargeIsEstimated: false,
    location: open.location ? { x: open.location.lon, y: open.location.lat } : null,
  };
  const session: CanonicalChargingSession = {
    externalId: entity.id,
    startedAt: iso(open.startMs),
    endedAt: iso(end.observedAtMs),
    startSocPct: open.startSocPct,
    endSocPct,
    energyKwh,
    peakPowerKw,
    location: open.location,
  };
  return { entity, session };
}

export interface FeedQuery {
  fromPosition: number;
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
  /** ChargeEvents only: the sessions served, in canonical terms. */
  sessions?: CanonicalChargingSession[];
}

/** The entities one sample yields in a feed (in order), and what they mean in canonical terms. */
type EntitiesOf<T> = (sample: Sample, vehicle: VehicleIdentity) => { entities: T[]; served: ServedReading[] } | undefined;

function scanFeed<T>(index: FleetIndex, query: FeedQuery, entitiesOf: EntitiesOf<T>): FeedPage<T> {
  const { fleet } = index;
  let position = Math.min(Math.max(query.fromPosition, positionOfSeq(fleet.startSeq)), positionOfSeq(fleet.endSeq));
  const data: T[] = [];
  const served: ServedReading[] = [];
  while (position < positionOfSeq(fleet.endSeq) && data.length < query.limit) {
    const chunk = fleet.samplesFrom(Math.floor(position / perSample), 4096);
    if (chunk.length === 0) break;
    for (const sample of chunk) {
      const first = Math.max(0, position - positionOfSeq(sample.seq));
      position = positionOfSeq(sample.seq + 1);
      if (query.fromDateMs !== undefined && sample.observedAtMs < query.fromDateMs) continue;
      const yielded = entitiesOf(sample, fleet.vehicles[sample.vehicle]!);
      if (!yielded) continue;
      // The sample's readings count as served with its first entity: a page that ends before the rest still
      // carried them (the rest are other diagnostics of the same reading).
      if (first === 0) served.push(...yielded.served);
      for (let i = first; i < yielded.entities.length; i += 1) {
        if (data.length >= query.limit) {
          position = positionOfSeq(sample.seq) + i;
          break;
        }
        data.push(yielded.entities[i]!);
      }
      if (data.length >= query.limit) break;
    }
  }
  return { data, served, toVersion: versionOf(position) };
}

const iso = (ms: number) => new Date(ms).toISOString();

type Diagnostic = { id: string; data: number };

/** Which odometer diagnostics a vehicle reports, and whether its raw ECM distance lacks the offset. */
export function odometerPlanOf(vehicle: VehicleIdentity): { adjusted: boolean; raw: string } {
  const raw =
    vehicle.kind === 'van' ? (vehicle.index % 2 === 0 ? diagnosticIds.odometer : diagnosticIds.obdOdometer) : diagnosticIds.j1939TotalVehicleDistance;
  // The corrected odometer already carries the offset; only a raw protocol distance can read short.
  return { adjusted: vehicle.index % 3 === 0 && raw !== diagnosticIds.odometer, raw };
}

/** Every diagnostic Geotab would report for this sample, in Geotab units, and what it means in canonical terms. */
function diagnosticsOf(sample: Sample, vehicle: VehicleIdentity): { diagnostics: Diagnostic[]; back: unknown } | undefined {
  switch (sample.signal) {
    case 'soc_pct':
      return { diagnostics: [{ id: diagnosticIds.stateOfCharge, data: sample.value }], back: sample.value };
    case 'odometer_km': {
      const metres = Math.round(sample.value * 1000);
      const plan = odometerPlanOf(vehicle);
      const diagnostics = plan.adjusted
        ? [
            { id: diagnosticIds.odometerAdjustment, data: metres },
            { id: plan.raw, data: Math.max(0, metres - rawOdometerOffsetM) },
          ]
        : [{ id: plan.raw, data: metres }];
      return { diagnostics, back: metres / 1000 };
    }
    case 'charging_state': {
      const charging = sample.value === 'charging';
      // Vans charge on AC, buses and trucks on DC.
      const code = charging ? (vehicle.kind === 'van' ? 1 : 2) : 0;
      return {
        diagnostics: [
          { id: diagnosticIds.isCharging, data: charging ? 1 : 0 },
          { id: diagnosticIds.chargingState, data: code },
        ],
        back: charging ? 'charging' : 'not_charging',
      };
    }
    case 'ignition': {
      const code = sample.value ? 1 : 0;
      return { diagnostics: [{ id: diagnosticIds.ignition, data: code }], back: code === 1 };
    }
    case 'battery_temp_c':
      return { diagnostics: [{ id: diagnosticIds.batteryTemperature, data: sample.value }], back: sample.value };
    case 'charge_power_kw': {
      const watts = Math.round(sample.value * 1000);
      return { diagnostics: [{ id: diagnosticIds.batteryPower, data: watts === 0 ? 0 : -watts }], back: watts / 1000 };
    }
    default:
      return undefined;
  }
}

export function statusDataPage(index: FleetIndex, account: string, query: FeedQuery): FeedPage<StatusData> {
  return scanFeed(index, query, (sample, vehicle) => {
    const reported = diagnosticsOf(sample, vehicle);
    if (!reported) return undefined;
    const entities = reported.diagnostics.map((diagnostic, i) => ({
      id: `a${sample.seq.toString(36)}${i === 0 ? '' : `-${i}`}`,
      dateTime: iso(sample.observedAtMs),
      data: diagnostic.data,
      device: { id: vehicle.geotabId },
      diagnostic: { id: diagnostic.id },
    }));
    const served = [{ account, externalDeviceId: vehicle.geotabId, signal: sample.signal, value: reported.back, observedAtMs: sample.observedAtMs }];
    return { entities, served };
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
    return { entities: [entity], served };
  });
}

/** ChargeEvents, each at the position of the sample that ended its charge. */
export function chargeEventPage(index: FleetIndex, query: FeedQuery): FeedPage<ChargeEvent> {
  const sessions: CanonicalChargingSession[] = [];
  const page = scanFeed(index, query, (sample) => {
    const event = index.chargeEventOf(sample.seq);
    if (!event) return undefined;
    sessions.push(event.session);
    return { entities: [event.entity], served: [] };
  });
  return { ...page, sessions };
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
