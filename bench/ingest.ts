/**
 * `npm run bench:ingest`: the full ingest path over HTTP against a raw set-based baseline, in one run on one
 * database, so the ratio between them is meaningful on a shared, noisy machine.
 *
 * - Full path: POST /internal/v1/ingest with batches of 1,000 updates (1,000 vehicles x 6 signals), a mix of
 *   new (80 %), late (10 %) and duplicate (10 %) readings; validation, classification, history, snapshot,
 *   sync marks, rejections, one transaction per batch.
 * - Raw baseline: the same readings for a twin fleet, written into history and snapshot with one set-based
 *   statement per batch (unnest arrays, ON CONFLICT guards) and no validation.
 * Rounds of the two alternate, so both see tables of the same size.
 * - Two arms: one batch at a time against the raw statement on one connection; and `BENCH_CONCURRENT_BATCHES` (4)
 *   batches at once, each for a fleet of its own (disjoint vehicles, as a core process takes them side by side),
 *   against the same readings through the raw statement on `BENCH_RAW_CONNECTIONS` (2) connections.
 *
 * Runs on PGlite, and on PostgreSQL too when FLEETWIRE_BENCH_DATABASE_URL (or DATABASE_URL) names one.
 * Not part of `npm test`: it reports figures, it asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { createBenchFleet, mixedRoundReadings, onBenchDatabases, startBenchApp, type BenchApp, type BenchFleet, type MixReading } from './support.ts';
import type { Database } from '../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../src/core/db/history-partitions.ts';
import { migrate } from '../src/core/db/migrate.ts';

const vehicles = Number(process.env.BENCH_VEHICLES ?? 1000);

const rawStatement = `
  WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[]::jsonb[], $6::uuid[])
      AS u(workspace_id, vehicle_id, signal, observed_at, value, connection_id)
  ),
  h AS (
    INSERT INTO signal_history (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
    SELECT workspace_id, vehicle_id, signal, observed_at, value, 'poll', 'samsara', connection_id, now() FROM u
    ON CONFLICT DO NOTHING
  )
  INSERT INTO signal_snapshot AS s (workspace_id, vehicle_id, signal, value, observed_at, source, provider, connection_id)
  SELECT DISTINCT ON (workspace_id, vehicle_id, signal) workspace_id, vehicle_id, signal, value, observed_at, 'poll', 'samsara', connection_id
    FROM u ORDER BY workspace_id, vehicle_id, signal, observed_at DESC
  ON CONFLICT (workspace_id, vehicle_id, signal) DO UPDATE
     SET value = excluded.value, observed_at = excluded.observed_at, source = excluded.source,
         provider = excluded.provider, connection_id = excluded.connection_id, updated_at = now()
   WHERE excluded.observed_at > s.observed_at`;

function rawParams(fleet: { workspaceId: string; connectionId: string; vehicleIds: string[] }, readings: MixReading[][]) {
  const ws: string[] = [];
  const vid: string[] = [];
  const sig: string[] = [];
  const at: string[] = [];
  const val: string[] = [];
  const conn: string[] = [];
  readings.forEach((list, v) => {
    for (const r of list) {
      ws.push(fleet.workspaceId);
      vid.push(fleet.vehicleIds[v]!);
      sig.push(r.signal);
      at.push(r.observedAt);
      val.push(JSON.stringify(r.value));
      conn.push(fleet.connectionId);
    }
  });
  return [ws, vid, sig, at, val, conn];
}

/** How many batches the full path takes at once (disjoint vehicles: one fleet each), and the raw baseline's connections. */
const concurrentBatches = Number(process.env.BENCH_CONCURRENT_BATCHES ?? 4);
const rawConnections = Number(process.env.BENCH_RAW_CONNECTIONS ?? 2);

interface Arm {
  readings: number;
  fullPerSecond: number;
  rawPerSecond: number;
  ratio: number;
  counts: Record<string, number>;
}

interface Result {
  backend: string;
  /** One batch at a time, against the raw statement on one connection. */
  serial: Arm;
  /** `concurrentBatches` at once, against the raw statement on `rawConnections` connections. */
  concurrent: Arm;
}

type Step = { body: string; raw: unknown[]; readings: number };

/** Round `round` of the mix for one fleet of the full path and its raw twin. */
function step(full: BenchFleet, raw: BenchFleet, round: number, baseMs: number): Step {
  const readings = mixedRoundReadings(vehicles, round, baseMs);
  const receivedAt = new Date().toISOString();
  const body = JSON.stringify({
    updates: readings.map((list, v) => ({
      workspaceId: full.workspaceId,
      provider: 'samsara',
      connectionId: full.connectionId,
      externalDeviceId: `dev-${v}`,
      source: 'poll',
      receivedAt,
      readings: list,
    })),
  });
  return { body, raw: rawParams(raw, readings), readings: readings.length * 6 };
}

/** Runs `jobs` with at most `width` at once. */
async function inParallel(width: number, jobs: (() => Promise<void>)[]): Promise<void> {
  const queue = [...jobs];
  await Promise.all(Array.from({ length: Math.min(width, queue.length) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await job();
  }));
}

/**
 * `rounds` rounds (after two of warm-up) of `width` batches each on the full path, at once, then the same readings
 * for the twin fleets through the raw statement, `rawWidth` at once; alternating, so both see tables of one size.
 */
async function measureArm(db: Database, bench: BenchApp, pairs: { full: BenchFleet; raw: BenchFleet }[], rounds: number, rawWidth: number, baseMs: number): Promise<Arm> {
  const url = `${bench.baseUrl}/internal/v1/ingest`;
  const clients = new Agent({ connections: pairs.length, keepAliveTimeout: 60_000 });
  // Everything the clients send is built before the clock starts.
  const plan = Array.from({ length: rounds + 2 }, (_, round) => pairs.map((pair) => step(pair.full, pair.raw, round, baseMs)));
  let fullMs = 0;
  let rawMs = 0;
  let measured = 0;
  const counts: Record<string, number> = {};
  try {
    for (const [round, steps] of plan.entries()) {
      const warmup = round < 2;
      const t0 = performance.now();
      const answers = await Promise.all(
        steps.map(async (s) => {
          const answer = await request(url, { method: 'POST', dispatcher: clients, headers: { authorization: `Bearer ${bench.serviceToken}`, 'content-type': 'application/json' }, body: s.body });
          const text = await answer.body.text();
          if (answer.statusCode !== 200) throw new Error(`ingest answered ${answer.statusCode}: ${text.slice(0, 300)}`);
          return JSON.parse(text) as { results: { readings: { status: string }[] }[] };
        }),
      );
      const t1 = performance.now();
      await inParallel(rawWidth, steps.map((s) => async () => void (await db.query(rawStatement, s.raw))));
      const t2 = performance.now();
      if (warmup) continue;
      for (const parsed of answers) for (const result of parsed.results) for (const r of result.readings) counts[r.status] = (counts[r.status] ?? 0) + 1;
      fullMs += t1 - t0;
      rawMs += t2 - t1;
      measured += steps.reduce((sum, s) => sum + s.readings, 0);
    }
  } finally {
    await clients.close();
  }
  const fullPerSecond = (measured / fullMs) * 1000;
  const rawPerSecond = (measured / rawMs) * 1000;
  return { readings: measured, fullPerSecond, rawPerSecond, ratio: fullPerSecond / rawPerSecond, counts };
}

async function runOn(backend: string, db: Database, rounds: number, jobSchema: string): Promise<Result> {
  await migrate(db);
  const secretKey = randomBytes(32);
  const pairs = [];
  for (let i = 0; i < Math.max(1, concurrentBatches) + 1; i += 1) {
    pairs.push({ full: await createBenchFleet(db, secretKey, `bench full path ${i}`, vehicles), raw: await createBenchFleet(db, secretKey, `bench raw baseline ${i}`, vehicles) });
  }
  const baseMs = Date.now() - (rounds + 10) * 60_000;
  await ensureHistoryPartitions(db, [baseMs - 3600_000, Date.now()]);
  // The core process's ingest concurrency is the batches taken at once.
  const bench = await startBenchApp(db, { jobSchema, secretKey, ingestConcurrency: Math.max(1, concurrentBatches) });
  try {
    const serial = await measureArm(db, bench, pairs.slice(0, 1), rounds, 1, baseMs);
    const concurrent = await measureArm(db, bench, pairs.slice(1), Math.max(1, Math.round(rounds / concurrentBatches)), rawConnections, baseMs);
    return { backend, serial, concurrent };
  } finally {
    await bench.close();
  }
}

function report(result: Result): void {
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
  const line = (label: string, arm: Arm) =>
    `${label}readings ${arm.readings}  full path ${k(arm.fullPerSecond)} readings/s  raw baseline ${k(arm.rawPerSecond)} readings/s  ` +
    `ratio ${(arm.ratio * 100).toFixed(0)} %  (${Object.entries(arm.counts).map(([s, n]) => `${s} ${n}`).join(', ')})\n`;
  process.stdout.write(line(`${result.backend.padEnd(10)} one batch at a time, raw on 1 connection:  `, result.serial));
  process.stdout.write(line(`${''.padEnd(10)} ${concurrentBatches} batches at once, raw on ${rawConnections} connections: `, result.concurrent));
}

async function main(): Promise<void> {
  process.stdout.write(`bench:ingest  ${vehicles} vehicles x 6 signals per batch, new/late/duplicate 80/10/10\n`);
  const rounds = { pglite: Number(process.env.BENCH_ROUNDS_PGLITE ?? 12), postgres: Number(process.env.BENCH_ROUNDS_POSTGRES ?? 30) };
  await onBenchDatabases(async (backend, db, jobSchema) => report(await runOn(backend, db, rounds[backend], jobSchema)), { poolSize: Math.max(4, concurrentBatches + 2) });
}

await main();
