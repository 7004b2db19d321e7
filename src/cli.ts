/**
 * The `fleetwire` command. `core` runs the core runtime, `migrate` applies migrations, `demo` (what `npm start`
 * runs) starts everything on embedded defaults; the admin groups manage workspaces through a running core.
 */
import { adminGroups, adminUsage, runAdminCommand, UsageError } from './cli/admin-commands.ts';
import { ConfigError, environmentVariables, loadConfig, type Config } from './config.ts';
import { migrate } from './core/db/migrate.ts';
import { runRetention } from './core/maintenance/retention.ts';
import { abandonedRunAfterMs } from './core/polling/poll-runner.ts';
import { closeAbandonedPollRuns } from './core/polling/poll-store.ts';
import { openCoreDatabase, pollJobTimings, startCore } from './core/runtime.ts';
import { startDemo, type Demo } from './demo/run.ts';
import { runSimulators, simulatorUsage } from './demo/sim-command.ts';
import { createLogger } from './logging.ts';
import { streamAdapters } from './providers/registry.ts';
import { startStreamHttp } from './stream/http.ts';
import { configuredStreamOptions, startStreamRuntime } from './stream/runtime.ts';

const usage = `usage: fleetwire <command>

  core        start the core runtime (API, ingest, scheduler, poll runner)
  stream      start the stream runtime (provider websockets into core's ingest)
  demo        start everything on embedded defaults (what npm start runs)
  sim         start the provider simulators alone ${simulatorUsage}
  migrate     apply database migrations and exit
  maintain    run retention once (history past each workspace's retention, old rejections and runs) and exit
${adminUsage}

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

function printBanner(config: Config, demo: Demo): void {
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
    ...demo.workspaces.map((w) => `    ${w.name.padEnd(12)} ${w.id}  key ${w.apiKey}`),
    '',
    '  Within two minutes: fresh, silent and never-reported vehicles, unbound devices rejected as unknown_device,',
    '  and the Geotab connection failing for two minutes (its vehicles turn stale), then recovering.',
    '',
    '  Simulated providers:',
    ...Object.entries(demo.simulators.running).map(([provider, sim]) => `    ${provider.padEnd(16)} ${sim.url}`),
    '',
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
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, name: `fleetwire-${command}` });

  switch (command) {
    case 'core': {
      const core = await startCore(config, logger);
      onShutdown(() => core.stop());
      return -1;
    }
    case 'demo': {
      const demo = await startDemo(config, logger);
      onShutdown(() => demo.stop());
      printBanner(config, demo);
      return -1;
    }
    case 'stream': {
      const runtime = startStreamRuntime(configuredStreamOptions(config, { coreUrl: config.coreUrl, serviceToken: config.secrets.serviceToken, logger, adapters: streamAdapters }));
      const http = await startStreamHttp(runtime, { host: config.host, port: config.port, serviceToken: config.secrets.serviceToken });
      logger.info({ 'url.full': config.coreUrl, 'fleetwire.stream.holder': runtime.holder }, 'stream runtime started');
      onShutdown(async () => {
        await http.close();
        await runtime.stop();
      });
      return -1;
    }
    case 'sim': {
      const simulators = await runSimulators(rest);
      onShutdown(() => simulators.stop());
      return -1;
    }
    case 'maintain': {
      const db = await openCoreDatabase(config, logger);
      try {
        const closedPollRuns = await closeAbandonedPollRuns(db, abandonedRunAfterMs(pollJobTimings));
        process.stdout.write(`${JSON.stringify({ closedPollRuns, ...(await runRetention(db)) }, null, 2)}\n`);
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'migrate': {
      const db = await openCoreDatabase(config, logger);
      const applied = await migrate(db);
      await db.close();
      process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'schema is current\n');
      return 0;
    }
    default: {
      if (!adminGroups.has(command)) throw new UsageError(`unknown command: ${command}`);
      const answer = await runAdminCommand(config, command, rest);
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
    if (error instanceof ConfigError) console.error(`fleetwire: ${error.message}`);
    else if (error instanceof UsageError) console.error(`fleetwire: ${error.message}\n\n${usage}`);
    else console.error(`fleetwire: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
