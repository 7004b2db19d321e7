/**
 * The demo's provider simulators: one simulated account per provider, each with its own seeded fleet, on fixed
 * loopback ports (so connections stored in the database still point at them after a restart). `fleetwire sim`
 * runs the same set on its own, for a core started separately.
 */
import { startGeotabSimulator, type GeotabSimulator } from '../sim/geotab/simulator.ts';
import { startSamsaraSimulator } from '../sim/samsara/simulator.ts';
import { startTeslaTelemetrySimulator, type RunningTeslaTelemetrySimulator } from '../sim/tesla-telemetry/simulator.ts';
import { startTraccarSimulator, type RunningTraccarSimulator } from '../sim/traccar/simulator.ts';
import { FaultInjector } from '../sim/faults.ts';
import { FleetModel, type VehicleIdentity } from '../sim/fleet-model.ts';
import type { RunningSimulator } from '../sim/simulator.ts';

/** The demo accounts' credentials: made up, printed, and good only against these simulators. */
export const demoCredentials = {
  samsara: { apiToken: 'demo-samsara-token' },
  geotab: { database: 'demo_depot', userName: 'demo@fleetwire.invalid', password: 'demo-geotab-password' },
  traccar: { token: 'demo-traccar-token' },
  'tesla-telemetry': { accessToken: 'demo-tesla-token' },
} as const;

export type DemoProvider = keyof typeof demoCredentials;

/** Vehicles per demo account: two depots of 26, a shuttle service of 8, four executive cars. */
export const demoFleetSizes: Record<DemoProvider, number> = { samsara: 26, geotab: 26, traccar: 8, 'tesla-telemetry': 4 };

export interface DemoSimulatorOptions {
  host: string;
  /** Port of each simulator; 0 picks a free one. */
  ports: Record<DemoProvider, number>;
  /** How much faster than real time the fleets live (routes, charging). */
  timeScale: number;
  /** Vehicles per provider account. */
  vehicles: Record<DemoProvider, number>;
  /** The clock the fleets live on; the wall clock by default (the soak runs a faster one). */
  now?: () => number;
  /** How long a poll simulator holds a request it times out by fault. Default 15 s. */
  pollTimeoutMs?: number;
}

export interface DemoSimulators {
  readonly running: {
    readonly samsara: RunningSimulator;
    readonly geotab: GeotabSimulator;
    readonly traccar: RunningTraccarSimulator;
    readonly 'tesla-telemetry': RunningTeslaTelemetrySimulator;
  };
  readonly fleets: Record<DemoProvider, FleetModel>;
  readonly faults: Record<DemoProvider, FaultInjector>;
  stop(): Promise<void>;
}

export async function startDemoSimulators(options: DemoSimulatorOptions): Promise<DemoSimulators> {
  const now = options.now ?? Date.now;
  const pollTimeoutMs = options.pollTimeoutMs ?? 15_000;
  const startMs = now();
  const fleet = (provider: DemoProvider, seed: number, namePrefix: string) =>
    new FleetModel({ seed, vehicles: options.vehicles[provider], startMs, timeScale: options.timeScale, namePrefix });
  const fleets: Record<DemoProvider, FleetModel> = {
    samsara: fleet('samsara', 1001, 'North'),
    geotab: fleet('geotab', 1002, 'South'),
    traccar: fleet('traccar', 1003, 'Shuttle'),
    'tesla-telemetry': fleet('tesla-telemetry', 1004, 'Exec'),
  };
  const faults: Record<DemoProvider, FaultInjector> = {
    samsara: new FaultInjector({}, 11),
    geotab: new FaultInjector({}, 12),
    traccar: new FaultInjector({}, 13),
    'tesla-telemetry': new FaultInjector({}, 14),
  };
  /** What every simulator takes: where to listen, the clock, its one demo account and its faults. */
  const common = <P extends DemoProvider>(provider: P) => ({
    host: options.host,
    port: options.ports[provider],
    now,
    accounts: [{ credentials: { ...demoCredentials[provider] }, fleet: fleets[provider] }],
    faults: faults[provider],
  });
  const started: RunningSimulator[] = [];
  try {
    const samsara = await startSamsaraSimulator({ ...common('samsara'), timeoutMs: pollTimeoutMs });
    started.push(samsara);
    const geotab = await startGeotabSimulator({ ...common('geotab'), timeoutMs: pollTimeoutMs });
    started.push(geotab);
    const traccar = await startTraccarSimulator(common('traccar'));
    started.push(traccar);
    const tesla = await startTeslaTelemetrySimulator({ ...common('tesla-telemetry'), resendRate: 0.02 });
    started.push(tesla);
    return {
      running: { samsara, geotab, traccar, 'tesla-telemetry': tesla },
      fleets,
      faults,
      stop: async () => {
        await Promise.all(started.map((s) => s.stop()));
      },
    };
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    throw error;
  }
}

/** The external id each provider knows a simulated vehicle by. */
export const demoExternalId: Record<DemoProvider, (vehicle: VehicleIdentity) => string> = {
  samsara: (vehicle) => vehicle.samsaraId,
  geotab: (vehicle) => vehicle.geotabId,
  traccar: (vehicle) => vehicle.traccarUniqueId,
  'tesla-telemetry': (vehicle) => vehicle.vin,
};
