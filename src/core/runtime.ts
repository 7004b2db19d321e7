/**
 * The core runtime: opens the database, applies migrations, serves the HTTP API, works the shared poll job queue
 * and, with the embedded scheduler, ticks. `stop` is idempotent and orderly: no new ticks, no new requests, running
 * polls finish, then the database closes.
 */
import type { FastifyInstance } from 'fastify';
import type { Config, Purpose } from '../config.ts';
import type { Logger } from '../logging.ts';
import type { PollAdapter } from '../providers/poll-adapter.ts';
import { historyAdapters, pollAdapters } from '../providers/registry.ts';
import { createBackfillRunner } from './backfill/backfill-runner.ts';
import { openDatabase, type Database } from './db/database.ts';
import { ensureHistoryPartitions, upcomingDays } from './db/history-partitions.ts';
import { migrate } from './db/migrate.ts';
import { buildCoreApp } from './http/app.ts';
import { createIngestGate } from './ingest/ingest-gate.ts';
import { createMaintenanceLoop } from './maintenance/maintenance-loop.ts';
import { runRetention } from './maintenance/retention.ts';
import { recordScheduledEvent } from './metrics.ts';
import { createPollJobQueue, type PollJobQueue } from './polling/job-queue.ts';
import { abandonedRunAfterMs, createPollRunner } from './polling/poll-runner.ts';
import { closeAbandonedPollRuns } from './polling/poll-store.ts';
import { checkCredentialKey } from './registry/credential-key.ts';
import { processScheduledEvent } from './polling/scheduled-events.ts';
import { createTicker } from './polling/ticker.ts';

export interface CoreRuntime {
  readonly url: string;
  readonly db: Database;
  readonly app: FastifyInstance;
  readonly jobs: PollJobQueue;
  stop(): Promise<void>;
}

/** Timings of the shared job queue: a dead holder's poll is taken over within expiry + maintenance + fetch interval. */
export const pollJobTimings = {
  expireInSeconds: 30,
  maintenanceIntervalSeconds: 10,
  pollingIntervalSeconds: 1,
  /** The whole workspace poll's deadline, below the expiry: a live holder is done before its job could be taken over. */
  runDeadlineMs: 25_000,
} as const;

/** A config core can start from: core's own, or the demo's (both hold all three secrets). */
export type CoreConfig = Config<'core' | 'demo'>;

/**
 * How many ingest batches may run at once (the rest wait, a few, then are refused): a little under the connection
 * pool, so reads and polls still find a connection; two on the embedded database, which runs one statement at a time.
 */
function ingestGateSizing(config: Pick<CoreConfig, 'database'>): { concurrency: number; queueLimit: number; retryAfterMs: number } {
  const concurrency = config.database.kind === 'postgres' ? Math.max(2, config.database.poolSize - 2) : 2;
  return { concurrency, queueLimit: concurrency * 4, retryAfterMs: 1000 };
}

/** The configured database, opened as it is (no migrations). */
export function openDatabaseOf(config: Pick<Config<Purpose>, 'database'>): Promise<Database> {
  return openDatabase(
    config.database.kind === 'pglite'
      ? { kind: 'pglite', dataDir: config.database.dataDir }
      : { kind: 'postgres', url: config.database.url, poolSize: config.database.poolSize },
  );
}

/** Opens the database, applies pending migrations and makes the history partitions of the coming days. */
export async function openCoreDatabase(config: Pick<Config<Purpose>, 'database'>, logger: Logger): Promise<Database> {
  const db = await openDatabaseOf(config);
  try {
    const applied = await migrate(db);
    if (applied.length > 0) logger.info({ 'db.migrations': applied }, 'migrations applied');
    await ensureHistoryPartitions(db, upcomingDays(Date.now()));
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

export interface CoreExtras {
  /** Poll adapters by provider; the provider registry's by default. */
  adapters?: ReadonlyMap<string, PollAdapter>;
}

export async function startCore(config: CoreConfig, logger: Logger, extras: CoreExtras = {}): Promise<CoreRuntime> {
  const db = await openCoreDatabase(config, logger);
  try {
    await checkCredentialKey(db, config.secrets.secretKey);
  } catch (error) {
    await db.close();
    throw error;
  }
  const jobs = createPollJobQueue(db, {
    schema: config.polling.jobSchema,
    expireInSeconds: pollJobTimings.expireInSeconds,
    maintenanceIntervalSeconds: pollJobTimings.maintenanceIntervalSeconds,
    pollingIntervalSeconds: pollJobTimings.pollingIntervalSeconds,
    concurrency: config.polling.workers,
    onError: (error) => logger.warn({ err: error }, 'job queue error'),
  });
  const ingestGate = createIngestGate(ingestGateSizing(config));
  const runner = createPollRunner(
    { db, ingestGate, secretKey: config.secrets.secretKey, logger: logger.child({ component: 'poll-runner' }), adapters: extras.adapters ?? pollAdapters },
    { connectionConcurrency: config.polling.connectionConcurrency, runDeadlineMs: pollJobTimings.runDeadlineMs, maxInlineRetryAfterMs: 5000, transientRetries: 2 },
  );
  const backfills = createBackfillRunner({ db, ingestGate, secretKey: config.secrets.secretKey, logger, adapters: historyAdapters });
  const maintenance = createMaintenanceLoop({
    intervalMs: config.maintenanceMinutes * 60_000,
    run: async () => {
      // Runs of workspaces that no longer poll (a poll closes its own workspace's abandoned runs when it starts).
      const closed = await closeAbandonedPollRuns(db, abandonedRunAfterMs(pollJobTimings));
      if (closed > 0) logger.warn({ 'fleetwire.poll.abandoned_runs': closed }, 'closed poll runs whose outcome was never recorded');
      const report = await runRetention(db);
      if (!report.skipped) logger.info({ 'fleetwire.retention': report }, 'retention ran');
    },
    onError: (error) => logger.warn({ err: error }, 'maintenance failed; it runs again later'),
  });
  const ticker = createTicker({
    intervalMs: config.polling.tickSeconds * 1000,
    onTick: async (event) => {
      const answer = await processScheduledEvent(db, jobs, event);
      recordScheduledEvent('ticker', answer.duplicate);
    },
    onError: (error) => logger.warn({ err: error }, 'scheduler tick failed'),
  });

  let app: FastifyInstance;
  try {
    await jobs.start();
    app = await buildCoreApp({
      db,
      ingestGate,
      jobs,
      logger,
      adminToken: config.secrets.adminToken,
      serviceToken: config.secrets.serviceToken,
      secretKey: config.secrets.secretKey,
      trustedProxies: config.trustedProxies,
      streamLeaseTtlSeconds: config.stream.leaseSeconds,
      webhooks: { allowPrivate: config.webhooks.allowPrivate, timeoutMs: config.webhooks.timeoutMs },
      dashboard: config.dashboard,
      backfill: { lookbackHours: config.backfill.lookbackHours, maxRangeDays: config.backfill.maxRangeDays },
      ...(config.nats.connection ? { nats: { ...config.nats.connection, stream: config.nats.stream, subjectPrefix: config.nats.subjectPrefix } } : {}),
    });
    await app.listen({ port: config.port, host: config.host });
    await jobs.work(async (job) => {
      try {
        await runner.runWorkspace(job);
      } catch (error) {
        logger.error({ err: error, 'fleetwire.workspace.id': job.workspaceId }, 'workspace poll failed');
      }
    });
    if (config.polling.scheduler === 'embedded') ticker.start();
    maintenance.start();
    backfills.start();
  } catch (error) {
    await backfills.stop().catch(() => undefined);
    await jobs.stop().catch(() => undefined);
    await db.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info(
    { 'url.full': url, 'db.system': db.kind === 'pglite' ? 'pglite' : 'postgresql', 'fleetwire.scheduler': config.polling.scheduler },
    'core listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    url,
    db,
    app,
    jobs,
    stop: () =>
      (stopping ??= (async () => {
        await ticker.stop();
        await maintenance.stop();
        // The job in hand stops at its last committed page; another process (or the next start) resumes it.
        await backfills.stop();
        await app.close();
        await jobs.stop();
        await db.close();
        logger.info('core stopped');
      })()),
  };
}
