/**
 * `npm start`: the whole system in one process on embedded defaults. The provider simulators, core (API, ingest,
 * scheduler, poll runner) and the demo's workspaces, seeded on first start and brought up to date after that; and,
 * beside it in a process of its own, the migrating yard's legacy poller, with a defect for a parity report to find.
 */
import { hostname } from 'node:os';
import { getVehicle } from '../core/read/vehicles.ts';
import { startCore, type CoreConfig, type CoreRuntime } from '../core/runtime.ts';
import type { Logger } from '../logging.ts';
import { streamAdapters } from '../providers/registry.ts';
import { configuredStreamOptions, startStreamRuntime, type StreamRuntime } from '../stream/runtime.ts';
import { demoWebhookTypes, demoWebhookWorkspace, removeDemoWebhook, seedDemo, seedDemoWebhook, type DemoWorkspace } from './seed.ts';
import { startLegacyPollerProcess, type LegacyPollerProcess } from './legacy-poller-process.ts';
import { demoFleetSizes, demoMigratingAccount, startDemoSimulators, type DemoSimulators } from './simulators.ts';
import { startDemoWebhookReceiver, type DemoWebhookReceiver } from './webhook-receiver.ts';

export interface Demo {
  core: CoreRuntime;
  stream: StreamRuntime;
  simulators: DemoSimulators;
  workspaces: DemoWorkspace[];
  /** The console receiver and what it is subscribed to; absent where core may not deliver to loopback. */
  webhooks?: { receiver: DemoWebhookReceiver; workspace: DemoWorkspace; types: readonly string[] };
  /** The migrating yard's legacy poller, and its defect. */
  legacyPoller?: {
    process: LegacyPollerProcess;
    workspace: DemoWorkspace;
    /** The vehicles whose odometer it sends in miles. */
    milesAsKm: readonly { externalId: string; name: string }[];
    lagSeconds: number;
    intervalSeconds: number;
  };
  stop(): Promise<void>;
}

/**
 * The legacy poller's defect, for the parity report to find: two vehicles' odometers sent in miles as if they were
 * km, and every reading 90 s late. It polls every 30 s, as an older integration would.
 */
export const demoLegacyDefect = { milesAsKmVehicles: 2, factor: 0.621371, lagSeconds: 90, intervalSeconds: 30 } as const;

function startDemoLegacyPoller(config: CoreConfig, core: CoreRuntime, simulators: DemoSimulators, workspaces: DemoWorkspace[], logger: Logger): Demo['legacyPoller'] {
  const workspace = workspaces.find((w) => w.migrating !== undefined);
  if (!workspace?.migrating) return undefined;
  const milesAsKm = workspace.migrating.vehicles.slice(0, demoLegacyDefect.milesAsKmVehicles);
  const args = [
    ...['--core-url', core.url, '--workspace', workspace.id, '--connection', workspace.migrating.connectionId],
    ...['--samsara-url', simulators.running.samsara.url, '--interval', String(demoLegacyDefect.intervalSeconds)],
    ...['--unit-error-factor', String(demoLegacyDefect.factor), '--unit-error-signal', 'odometer_km', ...milesAsKm.flatMap((v) => ['--unit-error-device', v.externalId])],
    ...['--lag', String(demoLegacyDefect.lagSeconds)],
  ];
  const poller = startLegacyPollerProcess({
    args,
    serviceToken: config.secrets.serviceToken,
    samsaraToken: demoMigratingAccount.credentials.apiToken,
    logLevel: config.logLevel,
    dataDir: config.dataDir,
    logger,
  });
  return { process: poller, workspace, milesAsKm, lagSeconds: demoLegacyDefect.lagSeconds, intervalSeconds: demoLegacyDefect.intervalSeconds };
}

/** Simulator ports follow core's: core on 8080 puts them on 8081-8084. */
export function demoSimulatorPorts(corePort: number) {
  const at = (offset: number) => (corePort === 0 ? 0 : corePort + offset);
  return { samsara: at(1), geotab: at(2), traccar: at(3), tessie: at(4) };
}

/**
 * Trouble now and then, so the dashboard has something to show: Samsara answers one request in twenty with a rate
 * limit (waited out within the poll), and Geotab goes down for two minutes, half a minute after start and then
 * every six minutes, long enough for its connection to fail and its vehicles to turn stale, and come back.
 */
function scheduleTrouble(simulators: DemoSimulators, logger: Logger): () => void {
  simulators.faults.samsara.setRates({ rate_limit: 0.05 });
  const outage = () => {
    simulators.faults.geotab.startOutage('server_error');
    logger.info('demo: the Geotab simulator is down for two minutes');
    const end = setTimeout(() => {
      simulators.faults.geotab.endOutage();
      logger.info('demo: the Geotab simulator is back');
    }, 120_000);
    end.unref();
  };
  const first = setTimeout(outage, 30_000);
  const every = setInterval(outage, 6 * 60_000);
  first.unref();
  every.unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}

/**
 * The console receiver, subscribed to one workspace's events. Only where core may deliver to loopback (the demo's
 * default; FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE=false says otherwise): there every delivery would be refused, so the
 * subscription an earlier start made is removed instead, rather than left failing.
 */
async function startConsoleWebhooks(config: CoreConfig, core: CoreRuntime, workspaces: DemoWorkspace[]): Promise<Demo['webhooks']> {
  const workspace = workspaces.find((w) => w.name === demoWebhookWorkspace);
  if (!workspace) return undefined;
  if (!config.webhooks.allowPrivate) {
    await removeDemoWebhook(core.db, workspace.id);
    return undefined;
  }
  const names = new Map<string, string>();
  const receiver = await startDemoWebhookReceiver({
    print: (line) => process.stdout.write(`${line}\n`),
    vehicleName: async (id) => {
      const known = names.get(id);
      if (known !== undefined) return known;
      const { name } = await getVehicle(core.db, workspace.id, id);
      names.set(id, name);
      return name;
    },
  });
  try {
    receiver.verifyWith(await seedDemoWebhook(core.db, config.secrets.secretKey, workspace.id, receiver.url, config.webhooks));
  } catch (error) {
    await receiver.stop();
    throw error;
  }
  return { receiver, workspace, types: demoWebhookTypes };
}

export async function startDemo(config: CoreConfig, logger: Logger): Promise<Demo> {
  const simulators = await startDemoSimulators({
    host: '127.0.0.1',
    ports: demoSimulatorPorts(config.port),
    timeScale: 5,
    vehicles: demoFleetSizes,
    // A local broker, if one runs: the demo then also streams Teslas through a fleet-telemetry MQTT dispatcher.
    mqttBroker: { host: '127.0.0.1', port: 1883 },
  });
  let core: CoreRuntime;
  let webhooks: Demo['webhooks'];
  try {
    core = await startCore(config, logger);
  } catch (error) {
    await simulators.stop();
    throw error;
  }
  try {
    const workspaces = await seedDemo(core.db, config.secrets.secretKey, simulators, config.dataDir);
    webhooks = await startConsoleWebhooks(config, core, workspaces);
    // The stream runtime, in-process but as it runs on its own: it reaches core over HTTP only.
    const stream = startStreamRuntime({
      ...configuredStreamOptions(config, { coreUrl: core.url, serviceToken: config.secrets.serviceToken, logger, adapters: streamAdapters }),
      holder: `demo-${hostname()}`,
      refreshMs: 5_000,
    });
    const calm = scheduleTrouble(simulators, logger);
    const legacyPoller = startDemoLegacyPoller(config, core, simulators, workspaces, logger);
    return {
      core,
      stream,
      simulators,
      workspaces,
      ...(webhooks ? { webhooks } : {}),
      ...(legacyPoller ? { legacyPoller } : {}),
      stop: async () => {
        calm();
        // Before core: its last post is answered, not cut off.
        await legacyPoller?.process.stop();
        await stream.stop();
        // After core: its dispatcher finishes the deliveries under way, and they find the receiver still there.
        await core.stop();
        await webhooks?.receiver.stop();
        await simulators.stop();
      },
    };
  } catch (error) {
    await core.stop();
    await webhooks?.receiver.stop();
    await simulators.stop();
    throw error;
  }
}
