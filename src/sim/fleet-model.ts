/**
 * A seeded, deterministic fleet of electric vehicles for the provider simulators: buses, vans and trucks that
 * drive routes out of a depot (state of charge falls with distance, the odometer rises, position, heading and
 * speed move), come back, plug in and charge (state of charge rises with charger power), and sit parked or
 * asleep (asleep: no new readings at all).
 *
 * Time: the model steps in whole seconds of wall-clock time, aligned to its start, so the same seed and the same
 * wall-clock span give the same samples however often a simulator asks. `timeScale` speeds up the duty cycle
 * (a 10x fleet drives, drains and charges ten times faster) while every sample still carries a real wall-clock
 * time, so the readings it produces pass ingest's clock checks.
 *
 * Every sample goes into one append-only log with a sequence number; simulators page through it (a feed cursor
 * is a position in the log), and keep their own record of what they served.
 */
import type { ChargingState, SignalName, SignalValue } from '../canonical/signals.ts';

export type Phase = 'driving' | 'returning' | 'charging' | 'parked' | 'asleep';
export type VehicleKind = 'bus' | 'van' | 'truck';

export interface VehicleIdentity {
  index: number;
  name: string;
  kind: VehicleKind;
  vin: string;
  /** Samsara vehicle id (numeric string). */
  samsaraId: string;
  /** Geotab device id ("b" and hex). */
  geotabId: string;
  /** Traccar's numeric device id and the device's unique id (IMEI-like). */
  traccarDeviceId: number;
  traccarUniqueId: string;
}

export interface VehicleState {
  phase: Phase;
  lat: number;
  lon: number;
  headingDeg: number;
  speedKph: number;
  socPct: number;
  odometerKm: number;
  chargingState: ChargingState;
  pluggedIn: boolean;
  chargePowerKw: number;
  batteryTempC: number;
  ignition: boolean;
  rangeKm: number;
}

export type Sample = {
  [S in SignalName]: { seq: number; vehicle: number; signal: S; value: SignalValue<S>; observedAtMs: number };
}[SignalName];

export interface FleetModelOptions {
  seed: number;
  vehicles: number;
  /** Wall-clock start, ms; rounded down to a whole second. */
  startMs: number;
  timeScale?: number;
  depot?: { lat: number; lon: number };
  /** How long samples stay in the log, wall-clock ms (older ones are trimmed; a cursor before them restarts). */
  retainMs?: number;
  /** Vehicle names start with this (default "EV"). */
  namePrefix?: string;
}

interface Spec {
  batteryKwh: number;
  kwhPerKm: number;
  chargerKw: number;
  cruiseKph: number;
}

const specs: Record<VehicleKind, Spec> = {
  bus: { batteryKwh: 350, kwhPerKm: 1.3, chargerKw: 150, cruiseKph: 35 },
  van: { batteryKwh: 75, kwhPerKm: 0.25, chargerKw: 50, cruiseKph: 55 },
  truck: { batteryKwh: 540, kwhPerKm: 1.5, chargerKw: 350, cruiseKph: 65 },
};

const stepMs = 1000;
const kmPerDegLat = 111.32;

/** mulberry32: small, fast, good enough for a simulation; deterministic across platforms. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (value: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};
const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));

interface Vehicle {
  identity: VehicleIdentity;
  spec: Spec;
  random: () => number;
  state: VehicleState;
  /** Sim-seconds left in the current phase (parked, asleep, charging complete), or the trip's km left. */
  phaseLeft: number;
  tripKm: number;
  chargeTarget: number;
  last: Map<SignalName, { ms: number; value: unknown }>;
}

/** Wall-clock cadence of each signal by phase, seconds; undefined means "only on change". */
const cadence: Record<Phase, Partial<Record<SignalName, number>>> = {
  driving: { location: 10, speed_kph: 10, heading_deg: 10, odometer_km: 30, soc_pct: 30, battery_temp_c: 60, range_km: 60 },
  returning: { location: 10, speed_kph: 10, heading_deg: 10, odometer_km: 30, soc_pct: 30, battery_temp_c: 60, range_km: 60 },
  charging: { soc_pct: 30, charge_power_kw: 30, battery_temp_c: 60, range_km: 60, location: 600 },
  parked: { location: 300, soc_pct: 300, odometer_km: 300 },
  asleep: {},
};

/** Signals reported when their value changes, whatever the cadence. */
const onChange: ModelledSignal[] = ['ignition', 'charging_state', 'plugged_in'];

export class FleetModel {
  readonly vehicles: readonly VehicleIdentity[];
  readonly startMs: number;
  readonly timeScale: number;
  readonly depot: { lat: number; lon: number };
  private readonly fleet: Vehicle[];
  private readonly log: Sample[] = [];
  /** Sequence number of log[0]. */
  private logBase = 0;
  private nextSeq = 0;
  private clockMs: number;
  private readonly retainMs: number;

  constructor(options: FleetModelOptions) {
    this.startMs = Math.floor(options.startMs / 1000) * 1000;
    this.clockMs = this.startMs;
    this.timeScale = options.timeScale ?? 1;
    this.depot = options.depot ?? { lat: 52.4862, lon: 13.4254 };
    this.retainMs = options.retainMs ?? 2 * 3600_000;
    const master = prng(options.seed);
    const kinds: VehicleKind[] = ['bus', 'van', 'truck'];
    const prefix = options.namePrefix ?? 'EV';
    this.fleet = Array.from({ length: options.vehicles }, (_, index) => {
      const random = prng(Math.floor(master() * 2 ** 32) ^ index);
      const kind = kinds[Math.floor(random() * kinds.length)]!;
      const seedTag = (options.seed >>> 0).toString(36).toUpperCase().padStart(7, '0').slice(-7);
      const identity: VehicleIdentity = {
        index,
        name: `${prefix} ${kind} ${String(index + 1).padStart(3, '0')}`,
        kind,
        vin: `FW${seedTag}${String(index).padStart(8, '0')}`,
        samsaraId: String(281_474_976_710_656 + (options.seed % 100_000) * 100_000 + index),
        geotabId: `b${(options.seed % 0xfff).toString(16)}${index.toString(16)}`,
        traccarDeviceId: (options.seed % 100_000) * 10_000 + index + 1,
        traccarUniqueId: `86${String(options.seed % 1_000_000).padStart(6, '0')}${String(index).padStart(7, '0')}`,
      };
      return this.initialVehicle(identity, specs[kind], random);
    });
    this.vehicles = this.fleet.map((v) => v.identity);
    for (const vehicle of this.fleet) this.emitInitial(vehicle);
  }

  private initialVehicle(identity: VehicleIdentity, spec: Spec, random: () => number): Vehicle {
    const roll = random();
    const phase: Phase = roll < 0.5 ? 'driving' : roll < 0.7 ? 'charging' : roll < 0.9 ? 'parked' : 'asleep';
    const socPct = phase === 'charging' ? 20 + random() * 50 : 35 + random() * 60;
    const away = phase === 'driving' ? 2 + random() * 15 : random() * 0.2;
    const bearing = random() * 360;
    const lat = this.depot.lat + (away * Math.cos((bearing * Math.PI) / 180)) / kmPerDegLat;
    const lon = this.depot.lon + (away * Math.sin((bearing * Math.PI) / 180)) / (kmPerDegLat * Math.cos((this.depot.lat * Math.PI) / 180));
    const state: VehicleState = {
      phase,
      lat,
      lon,
      headingDeg: bearing,
      speedKph: phase === 'driving' ? spec.cruiseKph * (0.6 + random() * 0.6) : 0,
      socPct,
      odometerKm: 5_000 + random() * 150_000,
      chargingState: phase === 'charging' ? 'charging' : 'not_charging',
      pluggedIn: phase === 'charging',
      chargePowerKw: phase === 'charging' ? spec.chargerKw : 0,
      batteryTempC: 18 + random() * 10,
      ignition: phase === 'driving',
      rangeKm: 0,
    };
    state.rangeKm = ((state.socPct / 100) * spec.batteryKwh) / spec.kwhPerKm;
    return {
      identity,
      spec,
      random,
      state,
      phaseLeft: phase === 'parked' ? 600 + random() * 3600 : phase === 'asleep' ? 4 * 3600 + random() * 8 * 3600 : 0,
      tripKm: phase === 'driving' ? 10 + random() * 60 : 0,
      chargeTarget: 90 + random() * 10,
      last: new Map(),
    };
  }

  /** The first readings: a moving vehicle reports now; an asleep one last reported hours ago. */
  private emitInitial(vehicle: Vehicle): void {
    const ageMs = vehicle.state.phase === 'asleep' ? (2 + vehicle.random() * 3) * 3600_000 : Math.floor(vehicle.random() * 20) * 1000;
    const at = this.startMs - Math.floor(ageMs / 1000) * 1000;
    for (const signal of allSignals) this.emit(vehicle, signal, at);
  }

  /** The model's clock (the last whole second it has stepped to). */
  get now(): number {
    return this.clockMs;
  }

  /** Steps every vehicle up to `nowMs` (wall clock); samples land in the log. */
  advanceTo(nowMs: number): void {
    while (this.clockMs + stepMs <= nowMs) {
      this.clockMs += stepMs;
      for (const vehicle of this.fleet) this.step(vehicle, this.clockMs);
    }
    this.trim(nowMs);
  }

  state(index: number): Readonly<VehicleState> {
    return this.fleet[index]!.state;
  }

  /** Puts a vehicle to sleep now (it reports nothing until it wakes); for tests and demos. */
  sleep(index: number, forSimSeconds = 24 * 3600): void {
    const vehicle = this.fleet[index]!;
    vehicle.state.phase = 'asleep';
    vehicle.state.speedKph = 0;
    vehicle.state.ignition = false;
    vehicle.phaseLeft = forSimSeconds;
  }

  /** Sequence number the next sample will get. */
  get endSeq(): number {
    return this.nextSeq;
  }

  /** Sequence number of the oldest sample still in the log. */
  get startSeq(): number {
    return this.logBase;
  }

  /** Samples with seq in [fromSeq, fromSeq + limit), oldest first; trimmed ones are skipped. */
  samplesFrom(fromSeq: number, limit = Number.POSITIVE_INFINITY): Sample[] {
    const start = Math.max(0, fromSeq - this.logBase);
    return this.log.slice(start, Number.isFinite(limit) ? start + limit : undefined);
  }

  /** The newest sample of each (vehicle, signal) at or before the log end: what a "latest values" call serves. */
  latest(): Sample[] {
    return newestPerSignal(this.log);
  }

  private trim(nowMs: number): void {
    const cutoff = nowMs - this.retainMs;
    let drop = 0;
    while (drop < this.log.length && this.log[drop]!.observedAtMs < cutoff && this.log.length - drop > this.fleet.length * allSignals.length) {
      drop += 1;
    }
    if (drop > 0) {
      this.log.splice(0, drop);
      this.logBase += drop;
    }
  }

  private emit(vehicle: Vehicle, signal: ModelledSignal, atMs: number): void {
    const value = valueOf(vehicle.state, signal);
    vehicle.last.set(signal, { ms: atMs, value });
    this.log.push({ seq: this.nextSeq, vehicle: vehicle.identity.index, signal, value, observedAtMs: atMs } as Sample);
    this.nextSeq += 1;
  }

  private step(vehicle: Vehicle, atMs: number): void {
    const dtSim = (stepMs / 1000) * this.timeScale;
    const s = vehicle.state;
    const before = { phase: s.phase, ignition: s.ignition, chargingState: s.chargingState, pluggedIn: s.pluggedIn };
    switch (s.phase) {
      case 'driving':
      case 'returning':
        this.drive(vehicle, dtSim);
        break;
      case 'charging':
        this.charge(vehicle, dtSim);
        break;
      case 'parked':
        vehicle.phaseLeft -= dtSim;
        if (vehicle.phaseLeft <= 0) this.leaveParking(vehicle);
        break;
      case 'asleep':
        vehicle.phaseLeft -= dtSim;
        if (vehicle.phaseLeft <= 0) this.startTrip(vehicle);
        break;
    }
    s.rangeKm = ((s.socPct / 100) * vehicle.spec.batteryKwh) / vehicle.spec.kwhPerKm;
    const load = s.phase === 'charging' ? s.chargePowerKw / 20 : s.speedKph / 8;
    s.batteryTempC += ((15 + load - s.batteryTempC) * dtSim) / 1800;

    if (s.phase === 'asleep') return;
    const changed =
      before.phase !== s.phase || before.ignition !== s.ignition || before.chargingState !== s.chargingState || before.pluggedIn !== s.pluggedIn;
    if (changed) {
      for (const signal of onChange) {
        const last = vehicle.last.get(signal);
        if (!last || last.value !== valueOf(s, signal)) this.emit(vehicle, signal, atMs);
      }
      // A state change comes with a position and a state of charge, as trackers report them.
      this.emit(vehicle, 'location', atMs);
      this.emit(vehicle, 'soc_pct', atMs);
    }
    for (const [signal, everySeconds] of Object.entries(cadence[s.phase]) as [ModelledSignal, number][]) {
      const last = vehicle.last.get(signal);
      if (last && last.ms >= atMs) continue;
      if (!last || atMs - last.ms >= everySeconds * 1000) this.emit(vehicle, signal, atMs);
    }
  }

  private drive(vehicle: Vehicle, dtSim: number): void {
    const s = vehicle.state;
    const r = vehicle.random;
    const cruise = vehicle.spec.cruiseKph;
    // Speed: a random walk around cruise with the odd stop at a light.
    if (s.speedKph < 1 && r() < 0.15) s.speedKph = 8;
    else if (r() < 0.01) s.speedKph = 0;
    else s.speedKph = clamp(s.speedKph + (r() - 0.5) * 6 + (cruise - s.speedKph) * 0.05, 0, cruise * 1.6);
    if (s.phase === 'returning') {
      const toDepot = bearingTo(s.lat, s.lon, this.depot.lat, this.depot.lon);
      s.headingDeg = turnTowards(s.headingDeg, toDepot, 8);
    } else {
      s.headingDeg = (s.headingDeg + (r() - 0.5) * 10 + 360) % 360;
    }
    const km = (s.speedKph * dtSim) / 3600;
    const rad = (s.headingDeg * Math.PI) / 180;
    s.lat += (km * Math.cos(rad)) / kmPerDegLat;
    s.lon += (km * Math.sin(rad)) / (kmPerDegLat * Math.cos((s.lat * Math.PI) / 180));
    s.odometerKm += km;
    s.socPct = clamp(s.socPct - ((km * vehicle.spec.kwhPerKm) / vehicle.spec.batteryKwh) * 100, 0, 100);
    vehicle.tripKm -= km;
    if (s.phase === 'driving' && (vehicle.tripKm <= 0 || s.socPct < 25)) s.phase = 'returning';
    if (s.phase === 'returning' && distanceKm(s.lat, s.lon, this.depot.lat, this.depot.lon) < 0.3) this.arrive(vehicle);
  }

  private arrive(vehicle: Vehicle): void {
    const s = vehicle.state;
    s.speedKph = 0;
    s.ignition = false;
    if (s.socPct < 80) {
      s.phase = 'charging';
      s.pluggedIn = true;
      s.chargingState = 'charging';
      s.chargePowerKw = vehicle.spec.chargerKw;
      vehicle.chargeTarget = 90 + vehicle.random() * 10;
    } else {
      s.phase = 'parked';
      vehicle.phaseLeft = 600 + vehicle.random() * 3600;
    }
  }

  private charge(vehicle: Vehicle, dtSim: number): void {
    const s = vehicle.state;
    if (s.chargingState === 'complete') {
      vehicle.phaseLeft -= dtSim;
      if (vehicle.phaseLeft <= 0) {
        s.pluggedIn = false;
        s.chargingState = 'not_charging';
        s.phase = 'parked';
        vehicle.phaseLeft = 300 + vehicle.random() * 1800;
      }
      return;
    }
    // Power tapers above 80 %, as real packs do.
    const taper = s.socPct < 80 ? 1 : Math.max(0.1, (100 - s.socPct) / 20);
    s.chargePowerKw = vehicle.spec.chargerKw * taper;
    s.socPct = clamp(s.socPct + ((s.chargePowerKw * dtSim) / 3600 / vehicle.spec.batteryKwh) * 100, 0, 100);
    if (s.socPct >= vehicle.chargeTarget) {
      s.chargingState = 'complete';
      s.chargePowerKw = 0;
      vehicle.phaseLeft = 600 + vehicle.random() * 2400;
    }
  }

  private leaveParking(vehicle: Vehicle): void {
    const s = vehicle.state;
    if (s.socPct < 35) {
      s.phase = 'charging';
      s.pluggedIn = true;
      s.chargingState = 'charging';
      vehicle.chargeTarget = 90 + vehicle.random() * 10;
    } else if (vehicle.random() < 0.25) {
      s.phase = 'asleep';
      vehicle.phaseLeft = 2 * 3600 + vehicle.random() * 6 * 3600;
    } else {
      this.startTrip(vehicle);
    }
  }

  private startTrip(vehicle: Vehicle): void {
    const s = vehicle.state;
    s.phase = 'driving';
    s.ignition = true;
    s.speedKph = 10;
    s.headingDeg = vehicle.random() * 360;
    // Never plan a trip the pack cannot bring back.
    const reachable = ((s.socPct - 25) / 100) * (vehicle.spec.batteryKwh / vehicle.spec.kwhPerKm) * 0.4;
    vehicle.tripKm = clamp(10 + vehicle.random() * 60, 2, Math.max(2, reachable));
  }
}

/** The newest of `samples` for each (vehicle, signal), in log order. */
export function newestPerSignal(samples: readonly Sample[]): Sample[] {
  const newest = new Map<string, Sample>();
  for (const sample of samples) {
    const key = `${sample.vehicle}|${sample.signal}`;
    const seen = newest.get(key);
    if (!seen || sample.observedAtMs >= seen.observedAtMs) newest.set(key, sample);
  }
  return [...newest.values()].sort((a, b) => a.seq - b.seq);
}

/** The signals the model simulates (the tracker's own battery and the link state are the provider simulators' to make). */
type ModelledSignal = Exclude<SignalName, 'tracker_battery_pct' | 'connectivity_state'>;

const allSignals: ModelledSignal[] = [
  'location',
  'speed_kph',
  'heading_deg',
  'odometer_km',
  'soc_pct',
  'charging_state',
  'plugged_in',
  'charge_power_kw',
  'battery_temp_c',
  'range_km',
  'ignition',
];

/** A signal's current value, rounded as a device would report it. */
function valueOf(s: VehicleState, signal: ModelledSignal): SignalValue<SignalName> {
  switch (signal) {
    case 'location':
      return { lat: round(s.lat, 6), lon: round(s.lon, 6) };
    case 'speed_kph':
      return round(s.speedKph, 1);
    case 'heading_deg':
      return Math.round(s.headingDeg) % 360;
    case 'odometer_km':
      return round(s.odometerKm, 3);
    case 'soc_pct':
      return round(s.socPct, 1);
    case 'charging_state':
      return s.chargingState;
    case 'plugged_in':
      return s.pluggedIn;
    case 'charge_power_kw':
      return round(s.chargePowerKw, 1);
    case 'battery_temp_c':
      return round(s.batteryTempC, 1);
    case 'range_km':
      return round(s.rangeKm, 1);
    case 'ignition':
      return s.ignition;
  }
}

function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * kmPerDegLat;
  const dLon = (lon2 - lon1) * kmPerDegLat * Math.cos((lat1 * Math.PI) / 180);
  return Math.hypot(dLat, dLon);
}

function bearingTo(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = lat2 - lat1;
  const dLon = (lon2 - lon1) * Math.cos((lat1 * Math.PI) / 180);
  return ((Math.atan2(dLon, dLat) * 180) / Math.PI + 360) % 360;
}

function turnTowards(heading: number, target: number, maxDeg: number): number {
  const diff = ((target - heading + 540) % 360) - 180;
  return (heading + clamp(diff, -maxDeg, maxDeg) + 360) % 360;
}
