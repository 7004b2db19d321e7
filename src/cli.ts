/**
 * The `fleetwire` command. `core` runs the core runtime, `migrate` applies migrations, `demo` (what `npm start`
 * runs) starts everything on embedded defaults; the admin groups manage workspaces through a running core.
 */
import { adminGroups, adminUsage, runAdminCommand, UsageError } from './cli/admin-commands.ts';
import { simulatorUsage } from './cli/simulator-usage.ts';
import { runWebhookCommand, webhookUsage } from './cli/webhook-commands.ts';
import { legacyPollerTokens, legacyPollerUsage, parseLegacyPollerArgs } from './cli/legacy-poller-command.ts';
import { deviceUsage, runDeviceCommand, runVehicleImport } from './cli/device-commands.ts';
import { ConfigError, configFor, environmentVariables } from './config.ts';
import type { CoreConfig } from './core/runtime.ts';
// Each command loads only what it runs (dynamic imports below): `stream` never loads core or the database
// drivers, only `demo` and `sim` load the demo and the simulators, and `legacy-poller` the demo's legacy poller alone.
import type { Demo } from './demo/run.ts';
import { createLogger } from './logging.ts';

const usage = `usage: fleetwire <command>

  core        start the core runtime (API, ingest, scheduler, poll runner)
  stream      start the stream runtime (provider websockets into core's ingest)
  demo        start everything on embedded defaults (what npm start runs)
  sim         start the provider simulators alone ${simulatorUsage}
  migrate     apply database migrations and exit
  maintain    run retention once (history past each workspace's retention, old rejections and runs), make the
              coming days' history partitions, and exit
  rotate-key  re-encrypt every connection's credentials from FLEETWIRE_SECRET_KEY to FLEETWIRE_NEW_SECRET_KEY
${adminUsage}${webhookUsage}${deviceUsage}${legacyPollerUsage}

Configuration comes from the environment: ${environmentVariables.join(', ')}.`;

function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`fleetwire: failed to stop cleanly after ${signal}:`, error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

function printBanner(config: CoreConfig, demo: Demo): void {
  const { core } = demo;
  const lines = [
    '',
    `Fleetwire is running at ${core.url}  (database: ${core.db.kind === 'pglite' ? `PGlite in ${config.database.kind === 'pglite' ? config.database.dataDir : ''}` : 'PostgreSQL'})`,
    '',
    `  admin token:    ${config.secrets.adminToken}`,
    `  service token:  ${config.secrets.serviceToken}`,
    '',
    `  Dashboard:  ${core.url}/#key=${encodeURIComponent(config.secrets.adminToken)}`,
    '              (signs you in as admin; or open ' + `${core.url}/` + ' and paste a workspace key)',
    '',
    '  Demo workspaces (read keys):',
    ...demo.workspaces.map((w) => `    ${w.name.padEnd(Math.max(12, ...demo.workspaces.map((x) => x.name.length)))} ${w.id}  key ${w.apiKey}`),
    '',
    '  Within two minutes: fresh, silent and never-reported vehicles, unbound devices rejected as unknown_device,',
    '  and the Geotab connection failing for two minutes (its vehicles turn stale), then recovering.',
    '',
    '  Simulated providers:',
    ...Object.entries(demo.simulators.running).map(([provider, sim]) => `    ${provider.padEnd(16)} ${sim.url}`),
    ...(demo.simulators.fleetTelemetry ? [`    ${'tesla-fleet-telemetry'.padEnd(16)} ${demo.simulators.fleetTelemetry.publisher.url}  (MQTT dispatcher on the local broker)`] : []),
    '',
    ...(demo.webhooks
      ? [
          `  Webhook receiver: ${demo.webhooks.receiver.url}  (subscribed to ${demo.webhooks.workspace.name}: ${demo.webhooks.types.map((t) => t.replace(/^fleetwire\.vehicle\./, '')).join(', ')})`,
          '    prints a "webhook" line per delivery whose signature it verified (time, event, vehicle, e.g. "soc 18% ↓ crossed 20%");',
          '    a delivery it cannot verify is refused with 401, one it printed before (a retry, a replay) is not printed again.',
          `    manage it:  fleetwire webhooks list --workspace ${demo.webhooks.workspace.id}`,
        ]
      : ['  Webhook receiver: off (FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE=false: core delivers to no loopback receiver)']),
    '',
    ...(demo.legacyPoller
      ? [
          `  Legacy poller: ${demo.legacyPoller.workspace.name} is polled by a legacy poller (a process of its own, pid ${demo.legacyPoller.process.pid ?? '?'},`,
          `    every ${demo.legacyPoller.intervalSeconds} s) that posts legacy_poll updates to core, with a defect: the odometer in miles for`,
          `    ${demo.legacyPoller.milesAsKm.map((v) => `${v.name} (Samsara ${v.externalId})`).join(' and ')}, and every reading ${demo.legacyPoller.lagSeconds} s late.`,
          '    The yard is in cutover shadow: core polls beside the legacy poller, and the parity report finds the defect',
          `    (Settings, or GET /v1/workspaces/${demo.legacyPoller.workspace.id}/cutover/parity?window=1h). See docs/LEGACY-POLLER.md`,
          '    and the migration runbook in docs/OPERATIONS.md.',
          '',
        ]
      : []),
    `  API description: ${core.url}/openapi.json`,
    `  try:  curl -H "Authorization: Bearer ${demo.workspaces[0]?.apiKey ?? config.secrets.adminToken}" ${core.url}/v1/workspaces/${demo.workspaces[0]?.id ?? ''}/vehicles`,
    '',
    config.secrets.generated.length > 0
      ? `  Generated ${config.secrets.generated.join(', ')} and kept them in ${config.dataDir}/secrets.json.`
      : `  Secrets come from the environment or ${config.dataDir}/secrets.json.`,
    '  Stop with Ctrl-C.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${usage}\n`);
    return command === undefined ? 2 : 0;
  }
  const logLevel = () => configFor('database').logLevel;
  const logger = createLogger({ level: logLevel(), name: `fleetwire-${command}` });

  switch (command) {
    case 'core': {
      const { startCore } = await import('./core/runtime.ts');
      const core = await startCore(configFor('core'), logger);
      onShutdown(() => core.stop());
      return -1;
    }
    case 'demo': {
      const config = configFor('demo');
      const { startDemo } = await import('./demo/run.ts');
      const demo = await startDemo(config, logger);
      onShutdown(() => demo.stop());
      printBanner(config, demo);
      return -1;
    }
    case 'stream': {
      const config = configFor('stream');
      const [{ streamAdapters }, { startStreamHttp }, { configuredStreamOptions, startStreamRuntime }] = await Promise.all([
        import('./providers/registry.ts'),
        import('./stream/http.ts'),
        import('./stream/runtime.ts'),
      ]);
      let stopping: Promise<void> | undefined;
      // Core refused the service token: no retry can fix that, so the process says why and stops.
      const onFatal = () => {
        console.error('fleetwire: core refused the service token: FLEETWIRE_SERVICE_TOKEN is not the token core was started with');
        stopping ??= stop().finally(() => process.exit(1));
      };
      const runtime = startStreamRuntime(
        configuredStreamOptions(config, { coreUrl: config.coreUrl, serviceToken: config.secrets.serviceToken, logger, adapters: streamAdapters }),
        undefined,
        { onFatal },
      );
      const http = await startStreamHttp(runtime, { host: config.host, port: config.port, serviceToken: config.secrets.serviceToken });
      const stop = async () => {
        await http.close();
        await runtime.stop();
      };
      logger.info({ 'url.full': config.coreUrl, 'fleetwire.stream.holder': runtime.holder }, 'stream runtime started');
      onShutdown(stop);
      return -1;
    }
    case 'sim': {
      const { runSimulators } = await import('./demo/sim-command.ts');
      const simulators = await runSimulators(rest);
      onShutdown(() => simulators.stop());
      return -1;
    }
    case 'legacy-poller': {
      // Usage mistakes first, then the configuration: a typo is said with the usage whatever the environment holds.
      const args = parseLegacyPollerArgs(rest);
      const tokens = legacyPollerTokens(configFor('legacy-poller'));
      const { startLegacyPoller } = await import('./demo/legacy-poller.ts');
      const poller = startLegacyPoller({ ...args, ...tokens, logger });
      onShutdown(() => poller.stop());
      // Started by the demo, over an IPC channel: the channel's end (the demo stopped, or killed outright) stops it
      // too, so no poller is left behind posting to a core that is gone.
      if (process.send) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
      return -1;
    }
    case 'maintain': {
      const [{ openCoreDatabase, pollJobTimings }, { runRetention }, { abandonedRunAfterMs }, { closeAbandonedPollRuns }] = await Promise.all([
        import('./core/runtime.ts'),
        import('./core/maintenance/retention.ts'),
        import('./core/polling/poll-runner.ts'),
        import('./core/polling/poll-store.ts'),
      ]);
      const db = await openCoreDatabase(configFor('database'), logger);
      try {
        const closedPollRuns = await closeAbandonedPollRuns(db, abandonedRunAfterMs(pollJobTimings));
        process.stdout.write(`${JSON.stringify({ closedPollRuns, ...(await runRetention(db)) }, null, 2)}\n`);
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'migrate': {
      const [{ openDatabaseOf }, { migrate }] = await Promise.all([import('./core/runtime.ts'), import('./core/db/migrate.ts')]);
      const db = await openDatabaseOf(configFor('database'));
      try {
        const applied = await migrate(db);
        process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'schema is current\n');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'rotate-key': {
      const config = configFor('rotate-key');
      if (config.newSecretKey === undefined) {
        throw new ConfigError(['FLEETWIRE_NEW_SECRET_KEY is not set: give the key to re-encrypt the provider credentials under (32 bytes, hex or base64)']);
      }
      const [{ openCoreDatabase }, { rotateCredentialKey }] = await Promise.all([import('./core/runtime.ts'), import('./core/registry/credential-key.ts')]);
      const db = await openCoreDatabase(config, logger);
      try {
        const report = await rotateCredentialKey(db, config.secrets.secretKey, config.newSecretKey);
        process.stdout.write(`${JSON.stringify({ ...report, next: 'restart every core process with FLEETWIRE_SECRET_KEY set to the new key' }, null, 2)}\n`);
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'webhooks': {
      const text = await runWebhookCommand(configFor('admin'), rest);
      if (text) process.stdout.write(`${text}\n`);
      return 0;
    }
    case 'devices': {
      process.stdout.write(`${await runDeviceCommand(configFor('admin'), rest)}\n`);
      return 0;
    }
    default: {
      if (command === 'vehicles' && rest[0] === 'import') {
        process.stdout.write(`${await runVehicleImport(configFor('admin'), rest.slice(1))}\n`);
        return 0;
      }
      if (!adminGroups.has(command)) throw new UsageError(`unknown command: ${command}`);
      const answer = await runAdminCommand(configFor('admin'), command, rest);
      if (answer !== null && answer !== undefined) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      return 0;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // -1: a long-running command; the process lives until a signal stops it.
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    // A configuration problem, or a credential key that is not the database's: the message says what to do.
    if (error instanceof ConfigError || (error instanceof Error && error.name === 'CredentialKeyMismatchError')) console.error(`fleetwire: ${error.message}`);
    else if (error instanceof UsageError) console.error(`fleetwire: ${error.message}\n\n${usage}`);
    else console.error(`fleetwire: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
