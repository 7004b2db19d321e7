/**
 * What the benchmarks share: the backends a run covers (each with its database and job schema), a throwaway
 * PostgreSQL schema for one run, and a core HTTP app listening on loopback over a given database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Agent } from 'undici';
import { openPglite, openPostgres, type Database } from '../src/core/db/database.ts';
import { buildCoreApp } from '../src/core/http/app.ts';
import { createIngestGate } from '../src/core/ingest/ingest-gate.ts';
import { createPollJobQueue } from '../src/core/polling/job-queue.ts';
import { createLogger } from '../src/logging.ts';
import { withSearchPath } from '../test/support/database.ts';

/** The backends `BENCH_BACKENDS` selects (comma-separated; default both). */
function benchBackends(): { pglite: boolean; postgres: boolean } {
  const chosen = (process.env.BENCH_BACKENDS ?? 'pglite,postgres').split(',').map((name) => name.trim());
  return { pglite: chosen.includes('pglite'), postgres: chosen.includes('postgres') };
}

/**
 * Runs `body` against a fresh schema `<prefix>_<random>` of the PostgreSQL at `url`, and gives it the job-queue
 * schema next to it; both are dropped afterwards.
 */
export async function withFreshSchema<T>(url: string, prefix: string, body: (target: { schema: string; jobSchema: string }) => Promise<T>): Promise<T> {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    return await body({ schema, jobSchema: `${schema}_jobs` });
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema}_jobs CASCADE`);
    await admin.end();
  }
}

export interface BenchBackend {
  name: 'pglite' | 'postgres';
  /** Where the job queue keeps its tables. */
  jobSchema: string;
  /** The database: an in-memory PGlite, or the run's fresh PostgreSQL schema (a pool of 4). */
  open(): Promise<Database>;
  /** The same database as configuration, for a core started from it (none for PGlite: the data dir's). */
  coreEnv: Record<string, string>;
}

/**
 * Runs `body` on each backend `BENCH_BACKENDS` selects, PGlite first. PostgreSQL is the benchmark database
 * (`FLEETWIRE_BENCH_DATABASE_URL`, else `DATABASE_URL`), in a fresh schema dropped afterwards; without either
 * URL its run is reported as skipped.
 */
export async function onBenchBackends(body: (backend: BenchBackend) => Promise<void>): Promise<void> {
  const selected = benchBackends();
  if (selected.pglite) await body({ name: 'pglite', jobSchema: 'fleetwire_jobs', open: () => openPglite(), coreEnv: {} });
  if (!selected.postgres) return;
  const url = process.env.FLEETWIRE_BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) {
    process.stdout.write('postgres   skipped (set FLEETWIRE_BENCH_DATABASE_URL or DATABASE_URL)\n');
    return;
  }
  await withFreshSchema(url, 'fw_bench', ({ schema, jobSchema }) =>
    body({
      name: 'postgres',
      jobSchema,
      open: async () => openPostgres({ url, searchPath: schema, poolSize: 4 }),
      coreEnv: { DATABASE_URL: withSearchPath(url, schema), FLEETWIRE_JOB_SCHEMA: jobSchema },
    }),
  );
}

/** `onBenchBackends` with each backend's database open for `body`, and closed after it. */
export async function onBenchDatabases(body: (backend: BenchBackend['name'], db: Database, jobSchema: string) => Promise<void>): Promise<void> {
  await onBenchBackends(async (backend) => {
    const db = await backend.open();
    try {
      await body(backend.name, db, backend.jobSchema);
    } finally {
      await db.close();
    }
  });
}

export interface BenchApp {
  /** http://127.0.0.1:<port> */
  baseUrl: string;
  adminToken: string;
  serviceToken: string;
  /** One keep-alive connection, as a single client would hold. */
  dispatcher: Agent;
  close(): Promise<void>;
}

/** The core HTTP app over `db` (already migrated), with its job queue, listening on a free loopback port. */
export async function startBenchApp(db: Database, options: { jobSchema: string; secretKey: Buffer }): Promise<BenchApp> {
  const adminToken = `fwa_bench_${randomBytes(16).toString('hex')}`;
  const serviceToken = `fws_bench_${randomBytes(16).toString('hex')}`;
  const jobs = createPollJobQueue(db, {
    schema: options.jobSchema,
    expireInSeconds: 30,
    maintenanceIntervalSeconds: 60,
    pollingIntervalSeconds: 5,
    concurrency: 1,
    onError: () => undefined,
  });
  await jobs.start();
  const app = await buildCoreApp({
    db,
    ingestGate: createIngestGate({ concurrency: 4, queueLimit: 16, retryAfterMs: 1000 }),
    jobs,
    logger: createLogger({ level: 'warn', name: 'bench' }),
    adminToken,
    serviceToken,
    secretKey: options.secretKey,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, connections: 1 });
  return {
    baseUrl: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    adminToken,
    serviceToken,
    dispatcher,
    async close() {
      await app.close();
      await jobs.stop();
      await dispatcher.close();
    },
  };
}
