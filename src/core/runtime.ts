/**
 * The core runtime: opens the database, applies migrations, serves the HTTP API. `start` and `stop` are
 * idempotent; `stop` closes the listener first (in-flight requests finish), then the database.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Logger } from '../logging.ts';
import { openDatabase, type Database } from './db/database.ts';
import { ensureHistoryPartitions } from './db/history-partitions.ts';
import { migrate } from './db/migrate.ts';
import { buildCoreApp } from './http/app.ts';

export interface CoreRuntime {
  readonly url: string;
  readonly db: Database;
  readonly app: FastifyInstance;
  stop(): Promise<void>;
}

export async function openCoreDatabase(config: Config, logger: Logger): Promise<Database> {
  const db = await openDatabase(
    config.database.kind === 'pglite'
      ? { kind: 'pglite', dataDir: config.database.dataDir }
      : { kind: 'postgres', url: config.database.url, poolSize: config.database.poolSize },
  );
  const applied = await migrate(db);
  if (applied.length > 0) logger.info({ 'db.migrations': applied }, 'migrations applied');
  const now = Date.now();
  await ensureHistoryPartitions(db, [now, now + 86_400_000]);
  return db;
}

export async function startCore(config: Config, logger: Logger): Promise<CoreRuntime> {
  const db = await openCoreDatabase(config, logger);
  let app: FastifyInstance;
  try {
    app = await buildCoreApp({
      db,
      logger,
      adminToken: config.secrets.adminToken,
      serviceToken: config.secrets.serviceToken,
      secretKey: config.secrets.secretKey,
    });
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await db.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ 'url.full': url, 'db.system': db.kind === 'pglite' ? 'pglite' : 'postgresql' }, 'core listening');

  let stopping: Promise<void> | undefined;
  return {
    url,
    db,
    app,
    stop: () =>
      (stopping ??= (async () => {
        await app.close();
        await db.close();
        logger.info('core stopped');
      })()),
  };
}
