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
 *
 * Runs on PGlite, and on PostgreSQL too when FLEETWIRE_BENCH_DATABASE_URL (or DATABASE_URL) names one.
 * Not part of `npm test`: it reports figures, it asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { createBenchFleet, mixedRoundReadings, onBenchDatabases, startBenchApp, type MixReading } from './support.ts';
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

interface Result {
  backend: string;
  readings: number;
  fullPerSecond: number;
  rawPerSecond: number;
  ratio: number;
  counts: Record<string, number>;
}

async function runOn(backend: string, db: Database, rounds: number, jobSchema: string): Promise<Result> {
  await migrate(db);
  const secretKey = randomBytes(32);
  const full = await createBenchFleet(db, secretKey, 'bench full path', vehicles);
  const raw = await createBenchFleet(db, secretKey, 'bench raw baseline', vehicles);
  const baseMs = Date.now() - (rounds + 10) * 60_000;
  await ensureHistoryPartitions(db, [baseMs - 3600_000, Date.now()]);

  const bench = await startBenchApp(db, { jobSchema, secretKey });
  const { serviceToken, dispatcher } = bench;
  const url = `${bench.baseUrl}/internal/v1/ingest`;

  // Everything the clients send is built before the clock starts.
  const plan = Array.from({ length: rounds + 2 }, (_, round) => {
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
  });

  let fullMs = 0;
  let rawMs = 0;
  let measured = 0;
  const counts: Record<string, number> = {};
  for (const [round, step] of plan.entries()) {
    const warmup = round < 2;
    const t0 = performance.now();
    const answer = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
      body: step.body,
    });
    const text = await answer.body.text();
    const t1 = performance.now();
    if (answer.statusCode !== 200) throw new Error(`ingest answered ${answer.statusCode}: ${text.slice(0, 300)}`);
    const parsed = JSON.parse(text) as { results: { readings: { status: string }[] }[] };
    await db.query(rawStatement, step.raw);
    const t2 = performance.now();
    if (warmup) continue;
    for (const result of parsed.results) for (const r of result.readings) counts[r.status] = (counts[r.status] ?? 0) + 1;
    fullMs += t1 - t0;
    rawMs += t2 - t1;
    measured += step.readings;
  }
  await bench.close();
  const fullPerSecond = (measured / fullMs) * 1000;
  const rawPerSecond = (measured / rawMs) * 1000;
  return { backend, readings: measured, fullPerSecond, rawPerSecond, ratio: fullPerSecond / rawPerSecond, counts };
}

function report(result: Result): void {
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
  process.stdout.write(
    `${result.backend.padEnd(10)} readings ${result.readings}  full path ${k(result.fullPerSecond)} readings/s  ` +
      `raw baseline ${k(result.rawPerSecond)} readings/s  ratio ${(result.ratio * 100).toFixed(0)} %  ` +
      `(${Object.entries(result.counts).map(([s, n]) => `${s} ${n}`).join(', ')})\n`,
  );
}

async function main(): Promise<void> {
  process.stdout.write(`bench:ingest  ${vehicles} vehicles x 6 signals per batch, new/late/duplicate 80/10/10\n`);
  const rounds = { pglite: Number(process.env.BENCH_ROUNDS_PGLITE ?? 12), postgres: Number(process.env.BENCH_ROUNDS_POSTGRES ?? 30) };
  await onBenchDatabases(async (backend, db, jobSchema) => report(await runOn(backend, db, rounds[backend], jobSchema)));
}

await main();
