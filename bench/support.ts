/**
 * What the benchmarks share: which backends a run covers, a throwaway PostgreSQL schema for one run, and a core
 * HTTP app listening on loopback over a given database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Agent } from 'undici';
import type { Database } from '../src/core/db/database.ts';
import { buildCoreApp } from '../src/core/http/app.ts';
import { createIngestGate } from '../src/core/ingest/ingest-gate.ts';
import { createPollJobQueue } from '../src/core/polling/job-queue.ts';
import { createLogger } from '../src/logging.ts';

/** The backends `BENCH_BACKENDS` selects (comma-separated; default both). */
export function benchBackends(): { pglite: boolean; postgres: boolean } {
  const chosen = (process.env.BENCH_BACKENDS ?? 'pglite,postgres').split(',').map((name) => name.trim());
  return { pglite: chosen.includes('pglite'), postgres: chosen.includes('postgres') };
}

/**
 * Runs `body` against a fresh schema (and its job-queue schema) of the benchmark database, dropped afterwards.
 * Without `FLEETWIRE_BENCH_DATABASE_URL` or `DATABASE_URL` the PostgreSQL run is reported as skipped.
 */
export async function withBenchSchema(body: (target: { url: string; schema: string; jobSchema: string }) => Promise<void>): Promise<void> {
  const url = process.env.FLEETWIRE_BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!url) {
    process.stdout.write('postgres   skipped (set FLEETWIRE_BENCH_DATABASE_URL or DATABASE_URL)\n');
    return;
  }
  const schema = `fw_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    await body({ url, schema, jobSchema: `${schema}_jobs` });
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema}_jobs CASCADE`);
    await admin.end();
  }
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
