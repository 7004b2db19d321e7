/**
 * The `fleetwire` command. `core` runs the core runtime, `migrate` applies migrations, `demo` (what `npm start`
 * runs) starts everything on embedded defaults; the admin groups manage workspaces through a running core.
 */
import { adminGroups, adminUsage, runAdminCommand, UsageError } from './cli/admin-commands.ts';
import { ConfigError, environmentVariables, loadConfig, type Config } from './config.ts';
import { migrate } from './core/db/migrate.ts';
import { openCoreDatabase, startCore, type CoreRuntime } from './core/runtime.ts';
import { createLogger } from './logging.ts';

const usage = `usage: fleetwire <command>

  core        start the core runtime (API, ingest)
  demo        start everything on embedded defaults (what npm start runs)
  migrate     apply database migrations and exit
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

function printBanner(config: Config, core: CoreRuntime): void {
  const lines = [
    '',
    `Fleetwire core is running at ${core.url}  (database: ${core.db.kind === 'pglite' ? `PGlite in ${config.database.kind === 'pglite' ? config.database.dataDir : ''}` : 'PostgreSQL'})`,
    '',
    `  admin token:    ${config.secrets.adminToken}`,
    `  service token:  ${config.secrets.serviceToken}`,
    '',
    `  API description: ${core.url}/openapi.json`,
    `  try:  curl -H "Authorization: Bearer ${config.secrets.adminToken}" ${core.url}/v1/workspaces`,
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
    case 'core':
    case 'demo': {
      const core = await startCore(config, logger);
      onShutdown(() => core.stop());
      if (command === 'demo') printBanner(config, core);
      return -1;
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
