/**
 * What the benchmarks share: the backends a run covers (each with its database and job schema), a throwaway
 * PostgreSQL schema for one run, and a core HTTP app listening on loopback over a given database.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { Agent } from 'undici';
import { openPglite, openPostgres, type Database } from '../src/core/db/database.ts';
import { buildCoreApp, type CoreAppOptions } from '../src/core/http/app.ts';
import { createIngestGate } from '../src/core/ingest/ingest-gate.ts';
import { createPollJobQueue } from '../src/core/polling/job-queue.ts';
import { createConnection } from '../src/core/registry/connections.ts';
import { createWorkspace } from '../src/core/registry/workspaces.ts';
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
  /** The database: an in-memory PGlite, or the run's fresh PostgreSQL schema (a pool of 4 unless told). */
  open(options?: { poolSize?: number }): Promise<Database>;
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
      open: async (options) => openPostgres({ url, searchPath: schema, poolSize: options?.poolSize ?? 4 }),
      coreEnv: { DATABASE_URL: withSearchPath(url, schema), FLEETWIRE_JOB_SCHEMA: jobSchema },
    }),
  );
}

/** `onBenchBackends` with each backend's database open for `body` (`open` as the backend takes it), and closed after it. */
export async function onBenchDatabases(
  body: (backend: BenchBackend['name'], db: Database, jobSchema: string) => Promise<void>,
  open?: { poolSize?: number },
): Promise<void> {
  await onBenchBackends(async (backend) => {
    const db = await backend.open(open);
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

/**
 * The core HTTP app over `db` (already migrated), with its job queue, listening on a free loopback port; `webhooks`
 * as the core app takes them (a receiver on loopback needs `allowPrivate`), and ingest batches at once up to
 * `ingestConcurrency` (4 unless told).
 */
export async function startBenchApp(
  db: Database,
  options: { jobSchema: string; secretKey: Buffer; webhooks?: CoreAppOptions['webhooks']; ingestConcurrency?: number },
): Promise<BenchApp> {
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
    ingestGate: createIngestGate({ concurrency: options.ingestConcurrency ?? 4, queueLimit: (options.ingestConcurrency ?? 4) * 4, retryAfterMs: 1000 }),
    jobs,
    logger: createLogger({ level: 'warn', name: 'bench' }),
    adminToken,
    serviceToken,
    secretKey: options.secretKey,
    ...(options.webhooks ? { webhooks: options.webhooks } : {}),
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

export interface BenchFleet {
  workspaceId: string;
  connectionId: string;
  /** Vehicle i is bound to device `dev-<i>` on the connection. */
  vehicleIds: string[];
}

/** A workspace with one Samsara poll connection and `vehicles` vehicles, each bound to its device. */
export async function createBenchFleet(db: Database, secretKey: Buffer, name: string, vehicles: number): Promise<BenchFleet> {
  const workspace = await createWorkspace(db, { name, policy: { retentionDays: 30 } });
  const connection = await createConnection(db, secretKey, workspace.id, { provider: 'samsara', transport: 'poll', credentials: { apiToken: 'bench' } });
  const ids = Array.from({ length: vehicles }, () => randomUUID());
  await db.query(
    `INSERT INTO vehicles (workspace_id, id, name) SELECT $1, id, 'Bench ' || ord FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, ord)`,
    [workspace.id, ids],
  );
  await db.query(
    `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id)
     SELECT $1, $2, 'dev-' || (ord - 1), id FROM unnest($3::uuid[]) WITH ORDINALITY AS t(id, ord)`,
    [workspace.id, connection.id, ids],
  );
  return { workspaceId: workspace.id, connectionId: connection.id, vehicleIds: ids };
}

export interface MixReading {
  signal: 'soc_pct' | 'odometer_km' | 'location' | 'speed_kph' | 'heading_deg' | 'charging_state';
  value: unknown;
  observedAt: string;
}

/** Round r of the `bench:ingest` mix: every vehicle of `vehicles` reports its 6 signals. 10 % of vehicles repeat last round (duplicates), 10 % send older data (late). */
export function mixedRoundReadings(vehicles: number, round: number, baseMs: number): MixReading[][] {
  return Array.from({ length: vehicles }, (_, v) => {
    // Each vehicle takes its turn: one round in ten it repeats the round before (sent new then), one round in
    // ten it sends readings from well before its snapshot.
    const turn = (v + round) % 10;
    const kind = round < 2 ? 'new' : turn === 0 ? 'duplicate' : turn === 1 ? 'late' : 'new';
    const r = kind === 'duplicate' ? round - 1 : round;
    const at = kind === 'late' ? baseMs + r * 60_000 - 30_000 - 60_000 * 5 : baseMs + r * 60_000;
    const observedAt = new Date(at).toISOString();
    return [
      { signal: 'soc_pct', value: Math.round((90 - ((r + v) % 60)) * 10) / 10, observedAt },
      { signal: 'odometer_km', value: 10_000 + v + r * 0.5 - (kind === 'late' ? 3 : 0), observedAt },
      { signal: 'location', value: { lat: 52.4 + (v % 100) / 1000, lon: 13.4 + r / 10_000 }, observedAt },
      { signal: 'speed_kph', value: (r * 7 + v) % 90, observedAt },
      { signal: 'heading_deg', value: (r * 13 + v) % 360, observedAt },
      { signal: 'charging_state', value: r % 4 === 0 ? 'charging' : 'not_charging', observedAt },
    ];
  });
}
