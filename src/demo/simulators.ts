/**
 * The demo's provider simulators: one simulated account per provider (two for Samsara: the migrating yard has its
 * own), each with its own seeded fleet, on fixed loopback ports (so connections stored in the database still point
 * at them after a restart). `fleetwire sim` runs the same set on its own, for a core started separately. When asked
 * to (`npm start` does) and an MQTT broker answers, a simulated fleet-telemetry server's MQTT dispatcher publishes
 * a few more Teslas there; without a broker the demo's Teslas are the Tessie simulator's alone.
 */
import { startGeotabSimulator, type GeotabSimulator } from '../sim/geotab/simulator.ts';
import { samsaraRateLimits } from '../sim/samsara/simulator-limits.ts';
import { startSamsaraSimulator } from '../sim/samsara/simulator.ts';
import { startTessieSimulator, type RunningTessieSimulator } from '../sim/tessie/simulator.ts';
import { startTraccarSimulator, type RunningTraccarSimulator } from '../sim/traccar/simulator.ts';
import { FaultInjector } from '../sim/faults.ts';
import { FleetModel, type VehicleIdentity } from '../sim/fleet-model.ts';
import type { RunningSimulator } from '../sim/simulator.ts';
import { brokerAnswers, startFleetTelemetryPublisher, type RunningFleetTelemetryPublisher } from '../sim/tesla-fleet-telemetry/publisher.ts';

/** The demo accounts' credentials: made up, printed, and good only against these simulators. */
export const demoCredentials = {
  samsara: { apiToken: 'demo-samsara-token' },
  geotab: { database: 'demo_depot', userName: 'demo@fleetwire.invalid', password: 'demo-geotab-password' },
  traccar: { token: 'demo-traccar-token' },
  tessie: { accessToken: 'demo-tesla-token' },
} as const;

export type DemoProvider = keyof typeof demoCredentials;

/** Vehicles per demo account: two depots of 26, a shuttle service of 8, four executive cars. */
export const demoFleetSizes: Record<DemoProvider, number> = { samsara: 26, geotab: 26, traccar: 8, tessie: 4 };

/**
 * The migrating yard's Samsara account: a small fleet of its own on the same Samsara simulator, with its own token,
 * read by the demo's legacy poller (and by core's polling beside it once the yard is in shadow).
 */
export const demoMigratingAccount = { credentials: { apiToken: 'demo-samsara-east-token' }, vehicles: 6 } as const;

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
  /**
   * An MQTT broker to probe (briefly); when it answers, a simulated fleet-telemetry MQTT dispatcher publishes
   * there under `topicBase` (`fleetTelemetryTopicBase` by default). Not given: no probe, no publisher.
   */
  mqttBroker?: { host: string; port: number; topicBase?: string };
}

/** The demo's fleet-telemetry dispatcher: where it publishes, and its fleet. */
export const fleetTelemetryTopicBase = 'fleetwire-demo/telemetry';
export const fleetTelemetryFleetSize = 3;

export interface DemoFleetTelemetry {
  readonly publisher: RunningFleetTelemetryPublisher;
  readonly fleet: FleetModel;
}

export interface DemoSimulators {
  readonly running: {
    readonly samsara: RunningSimulator;
    readonly geotab: GeotabSimulator;
    readonly traccar: RunningTraccarSimulator;
    readonly tessie: RunningTessieSimulator;
  };
  readonly fleets: Record<DemoProvider, FleetModel>;
  /** The migrating yard's fleet, served by the Samsara simulator to {@link demoMigratingAccount}'s token. */
  readonly migratingFleet: FleetModel;
  readonly faults: Record<DemoProvider, FaultInjector>;
  /** Present when a broker answered the probe. */
  readonly fleetTelemetry?: DemoFleetTelemetry;
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
    tessie: fleet('tessie', 1004, 'Exec'),
  };
  const migratingFleet = new FleetModel({ seed: 1006, vehicles: demoMigratingAccount.vehicles, startMs, timeScale: options.timeScale, namePrefix: 'East' });
  const faults: Record<DemoProvider, FaultInjector> = {
    samsara: new FaultInjector({}, 11),
    geotab: new FaultInjector({}, 12),
    traccar: new FaultInjector({}, 13),
    tessie: new FaultInjector({}, 14),
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
    // Samsara's documented limits, so a burst meets the 429 a real organization would; the demo's polling (three
    // requests a connection every 15 s) stays far below them.
    const samsara = await startSamsaraSimulator({
      ...common('samsara'),
      accounts: [...common('samsara').accounts, { credentials: { ...demoMigratingAccount.credentials }, fleet: migratingFleet }],
      timeoutMs: pollTimeoutMs,
      rateLimitPerSecond: samsaraRateLimits.perTokenPerSecond,
      rateLimits: { perOrganizationPerSecond: samsaraRateLimits.perOrganizationPerSecond, endpointsPerSecond: samsaraRateLimits.endpointsPerSecond },
    });
    started.push(samsara);
    // MyGeotab's GetFeed limit, one call per entity type per second: the adapter paces itself to it.
    const geotab = await startGeotabSimulator({ ...common('geotab'), timeoutMs: pollTimeoutMs, feedCallIntervalMs: 1000 });
    started.push(geotab);
    // The demo's Traccar connection maps the EV attributes (src/demo/seed.ts), so its ground truth holds them.
    const traccar = await startTraccarSimulator({ ...common('traccar'), evAttributesMapped: true });
    started.push(traccar);
    const tesla = await startTessieSimulator({ ...common('tessie'), resendRate: 0.02 });
    started.push(tesla);
    const fleetTelemetry = options.mqttBroker ? await startDemoFleetTelemetry(options.mqttBroker, startMs, options.timeScale, now) : undefined;
    return {
      running: { samsara, geotab, traccar, tessie: tesla },
      fleets,
      migratingFleet,
      faults,
      ...(fleetTelemetry ? { fleetTelemetry } : {}),
      stop: async () => {
        await Promise.all([...started.map((s) => s.stop()), fleetTelemetry?.publisher.stop()]);
      },
    };
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    throw error;
  }
}

/** The simulated dispatcher, when a broker answers within 300 ms; undefined (and nothing started) otherwise. */
async function startDemoFleetTelemetry(
  broker: { host: string; port: number; topicBase?: string },
  startMs: number,
  timeScale: number,
  now: () => number,
): Promise<DemoFleetTelemetry | undefined> {
  if (!(await brokerAnswers(broker.host, broker.port))) return undefined;
  const fleet = new FleetModel({ seed: 1005, vehicles: fleetTelemetryFleetSize, startMs, timeScale, namePrefix: 'Fleet' });
  try {
    const publisher = await startFleetTelemetryPublisher({ brokerUrl: `mqtt://${broker.host}:${broker.port}`, topicBase: broker.topicBase ?? fleetTelemetryTopicBase, fleet, now });
    return { publisher, fleet };
  } catch {
    // Something answered the probe but speaks no MQTT: the demo goes on without it.
    return undefined;
  }
}

/** The external id each provider knows a simulated vehicle by. */
export const demoExternalId: Record<DemoProvider, (vehicle: VehicleIdentity) => string> = {
  samsara: (vehicle) => vehicle.samsaraId,
  geotab: (vehicle) => vehicle.geotabId,
  traccar: (vehicle) => vehicle.traccarUniqueId,
  tessie: (vehicle) => vehicle.vin,
};
