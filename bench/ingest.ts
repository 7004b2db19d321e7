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
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import { onBenchDatabases, startBenchApp } from './support.ts';
import type { Database } from '../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../src/core/db/history-partitions.ts';
import { migrate } from '../src/core/db/migrate.ts';
import { createConnection } from '../src/core/registry/connections.ts';
import { createWorkspace } from '../src/core/registry/workspaces.ts';

const vehicles = Number(process.env.BENCH_VEHICLES ?? 1000);
const signals = ['soc_pct', 'odometer_km', 'location', 'speed_kph', 'heading_deg', 'charging_state'] as const;

interface Reading {
  signal: (typeof signals)[number];
  value: unknown;
  observedAt: string;
}

/** Round r: every vehicle reports its 6 signals. 10 % of vehicles repeat last round (duplicates), 10 % send older data (late). */
function roundReadings(round: number, baseMs: number): Reading[][] {
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

async function createBenchFleet(db: Database, secretKey: Buffer, name: string) {
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

function rawParams(fleet: { workspaceId: string; connectionId: string; vehicleIds: string[] }, readings: Reading[][]) {
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
  const full = await createBenchFleet(db, secretKey, 'bench full path');
  const raw = await createBenchFleet(db, secretKey, 'bench raw baseline');
  const baseMs = Date.now() - (rounds + 10) * 60_000;
  await ensureHistoryPartitions(db, [baseMs - 3600_000, Date.now()]);

  const bench = await startBenchApp(db, { jobSchema, secretKey });
  const { serviceToken, dispatcher } = bench;
  const url = `${bench.baseUrl}/internal/v1/ingest`;

  // Everything the clients send is built before the clock starts.
  const plan = Array.from({ length: rounds + 2 }, (_, round) => {
    const readings = roundReadings(round, baseMs);
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
    return { body, raw: rawParams(raw, readings), readings: readings.length * signals.length };
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
  process.stdout.write(`bench:ingest  ${vehicles} vehicles x ${signals.length} signals per batch, new/late/duplicate 80/10/10\n`);
  const rounds = { pglite: Number(process.env.BENCH_ROUNDS_PGLITE ?? 12), postgres: Number(process.env.BENCH_ROUNDS_POSTGRES ?? 30) };
  await onBenchDatabases(async (backend, db, jobSchema) => report(await runOn(backend, db, rounds[backend], jobSchema)));
}

await main();
