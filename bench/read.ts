/**
 * `npm run bench:read`: read latency on a big workspace. One workspace of 10,000 vehicles, each with a snapshot of
 * every signal and 60 readings of each signal in history (one a minute, the last hour), generated in the database.
 * Then, over HTTP with the admin token: p50 and p99 of a vehicles page (500 vehicles with their snapshot and
 * freshness), of one vehicle's 24 h state-of-charge history, and of the workspace health query. A hundred of the
 * vehicles (BENCH_WEEK_VEHICLES) also hold a week of state of charge, one reading a minute (10,080 each): the week
 * chart the dashboard draws, downsampled in the database to 1 h buckets (`history?bucket=1h`), is measured on them.
 * The workspace's connection also reports 5,000 devices nobody bound (BENCH_DISCOVERED; one in ten ignored), as a
 * shared provider account does: the onboarding list (`discovered-devices`, pages of 100) is measured on them.
 * The workspace is in cutover shadow with a day of parity kept for 4 signals of every vehicle (read-parity.ts): the
 * parity report over 24 h (`cutover/parity?window=24h`) is measured on it, BENCH_PARITY_SAMPLES times (20 unless
 * told: each sums a day of hours of 40,000 vehicle signals), and each answer is checked against the seed.
 *
 * Runs on PGlite, and on PostgreSQL too when FLEETWIRE_BENCH_DATABASE_URL (or DATABASE_URL) names one.
 * Not part of `npm test`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import { checkParityReport, paritySignals, parityWindowHours, seedParity, type ParitySeed } from './read-parity.ts';
import { onBenchDatabases, startBenchApp } from './support.ts';
import { signalNames } from '../src/canonical/signals.ts';
import type { Database } from '../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../src/core/db/history-partitions.ts';
import { migrate } from '../src/core/db/migrate.ts';
import { createConnection } from '../src/core/registry/connections.ts';
import { createWorkspace } from '../src/core/registry/workspaces.ts';

const vehicles = Number(process.env.BENCH_VEHICLES ?? 10_000);
const readingsPerSignal = Number(process.env.BENCH_READINGS ?? 60);
const samples = Number(process.env.BENCH_SAMPLES ?? 100);
const weekVehicles = Math.min(vehicles, Number(process.env.BENCH_WEEK_VEHICLES ?? 100));
const weekMs = 7 * 86_400_000;
const discovered = Number(process.env.BENCH_DISCOVERED ?? 5000);
const paritySamples = Number(process.env.BENCH_PARITY_SAMPLES ?? Math.min(samples, 20));

/** A plausible value of each signal, as SQL over the vehicle number `n` and the minute `m`. */
const valueSql: Record<(typeof signalNames)[number], string> = {
  soc_pct: `to_jsonb(round((90 - (m * 0.5) - (n % 30))::numeric, 1))`,
  odometer_km: `to_jsonb(10000 + n + m * 0.8)`,
  location: `jsonb_build_object('lat', 52.4 + (n % 1000) / 10000.0, 'lon', 13.3 + m / 10000.0)`,
  heading_deg: `to_jsonb((n * 7 + m * 3) % 360)`,
  speed_kph: `to_jsonb((n + m * 5) % 90)`,
  charging_state: `to_jsonb(CASE WHEN n % 4 = 0 THEN 'charging' ELSE 'not_charging' END)`,
  plugged_in: `to_jsonb(n % 4 = 0)`,
  range_km: `to_jsonb(round((200 - m)::numeric, 1))`,
  battery_temp_c: `to_jsonb(20 + (n % 10))`,
  ignition: `to_jsonb(n % 4 <> 0)`,
  charge_power_kw: `to_jsonb(CASE WHEN n % 4 = 0 THEN 50 ELSE 0 END)`,
  tracker_battery_pct: `to_jsonb(100 - (n % 60))`,
  connectivity_state: `to_jsonb(CASE WHEN n % 50 = 0 THEN 'asleep' ELSE 'online' END)`,
};

async function seed(db: Database, secretKey: Buffer): Promise<{ workspaceId: string; vehicleIds: string[]; parity: ParitySeed }> {
  const workspace = await createWorkspace(db, { name: 'Read bench depot' });
  const connection = await createConnection(db, secretKey, workspace.id, { provider: 'samsara', transport: 'poll', credentials: { apiToken: 'bench' } });
  const ids = Array.from({ length: vehicles }, () => randomUUID());
  await db.query(
    `INSERT INTO vehicles (workspace_id, id, name, vin, last_synced_at, last_observed_at)
     SELECT $1, id, 'Vehicle ' || lpad(ord::text, 5, '0'), 'VIN' || ord,
            -- most synced a moment ago; one in twenty ten minutes ago (stale); one in fifty observed hours ago (silent)
            now() - CASE WHEN ord % 20 = 0 THEN interval '10 minutes' ELSE interval '5 seconds' END,
            now() - CASE WHEN ord % 50 = 0 THEN interval '3 hours' ELSE interval '1 minute' END
       FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, ord)`,
    [workspace.id, ids],
  );
  await db.query(
    `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id)
     SELECT $1, $2, 'dev-' || ord, id FROM unnest($3::uuid[]) WITH ORDINALITY AS t(id, ord)`,
    [workspace.id, connection.id, ids],
  );
  const base = Date.now() - readingsPerSignal * 60_000;
  await ensureHistoryPartitions(db, [base, Date.now()]);
  for (const signal of signalNames) {
    // One signal at a time keeps each statement's memory modest on the embedded database.
    await db.query(
      `INSERT INTO signal_history (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
       SELECT $1, v.id, $2, to_timestamp($3 / 1000.0) + make_interval(mins => m), ${valueSql[signal]}, 'poll', 'samsara', $4, now()
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM vehicles WHERE workspace_id = $1) v
        CROSS JOIN generate_series(0, $5 - 1) AS m`,
      [workspace.id, signal, base, connection.id, readingsPerSignal],
    );
    await db.query(
      `INSERT INTO signal_snapshot (workspace_id, vehicle_id, signal, value, observed_at, source, provider, connection_id)
       SELECT DISTINCT ON (vehicle_id) workspace_id, vehicle_id, signal, value, observed_at, source, provider, connection_id
         FROM signal_history WHERE workspace_id = $1 AND signal = $2
        ORDER BY vehicle_id, observed_at DESC`,
      [workspace.id, signal],
    );
  }
  // The week of SoC before the hour above, for the vehicles the week chart is measured on.
  const weekStart = Date.now() - weekMs;
  await ensureHistoryPartitions(db, [...Array.from({ length: 8 }, (_, day) => weekStart + day * 86_400_000), Date.now()]);
  for (let at = 0; at < weekVehicles; at += 10) {
    await db.query(
      `INSERT INTO signal_history (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
       SELECT $1, v.id, 'soc_pct', to_timestamp($3 / 1000.0) + make_interval(mins => m), to_jsonb(round((50 + 40 * sin(m / 600.0))::numeric, 1)), 'poll', 'samsara', $4, now()
         FROM unnest($2::uuid[]) AS v(id)
        CROSS JOIN generate_series(0, $5 - 1) AS m
       ON CONFLICT DO NOTHING`,
      [workspace.id, ids.slice(at, Math.min(at + 10, weekVehicles)), weekStart, connection.id, Math.floor((weekMs - readingsPerSignal * 60_000) / 60_000)],
    );
  }
  // Devices nobody bound, seen over the last day, each with a sample like the ingest handler keeps.
  await db.query(
    `INSERT INTO discovered_devices (workspace_id, connection_id, external_id, provider, status, first_seen_at, last_seen_at, reading_count, sample)
     SELECT $1, $2, 'foreign-' || n, 'samsara', CASE WHEN n % 10 = 0 THEN 'ignored' ELSE 'pending' END,
            now() - interval '1 day', now() - make_interval(secs => n * 17 % 86400), 1000 + n,
            jsonb_build_object('soc_pct', jsonb_build_object('value', n % 100, 'observedAt', now()),
                               'location', jsonb_build_object('value', jsonb_build_object('lat', 52.4, 'lon', 13.3), 'observedAt', now()))
       FROM generate_series(1, $3) AS n`,
    [workspace.id, connection.id, discovered],
  );
  const parity = await seedParity(db, { workspaceId: workspace.id, connectionId: connection.id, vehicleIds: ids });
  // Seeding takes minutes: the vehicles' clocks are set again as it ends, so the fleet is measured as described (one
  // in twenty stale, one in fifty silent) rather than gone stale while the history was written.
  await db.query(
    `UPDATE vehicles SET last_synced_at = now() - CASE WHEN t.ord % 20 = 0 THEN interval '10 minutes' ELSE interval '5 seconds' END,
                         last_observed_at = now() - CASE WHEN t.ord % 50 = 0 THEN interval '3 hours' ELSE interval '1 minute' END
       FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, ord)
      WHERE vehicles.workspace_id = $1 AND vehicles.id = t.id`,
    [workspace.id, ids],
  );
  await db.exec('VACUUM ANALYZE');
  return { workspaceId: workspace.id, vehicleIds: ids, parity };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function runOn(backend: string, db: Database, jobSchema: string): Promise<void> {
  await migrate(db);
  const secretKey = randomBytes(32);
  const seeded = Date.now();
  const { workspaceId, vehicleIds, parity } = await seed(db, secretKey);
  const seedSeconds = (Date.now() - seeded) / 1000;
  const bench = await startBenchApp(db, { jobSchema, secretKey });
  const { adminToken, dispatcher } = bench;
  const url = bench.baseUrl;
  const get = async (path: string) => {
    const t0 = performance.now();
    const answer = await request(`${url}${path}`, { dispatcher, headers: { authorization: `Bearer ${adminToken}` } });
    const body = await answer.body.text();
    const ms = performance.now() - t0;
    if (answer.statusCode !== 200) throw new Error(`${path} answered ${answer.statusCode}: ${body.slice(0, 200)}`);
    return { ms, body };
  };

  const pages: number[] = [];
  const histories: number[] = [];
  const healths: number[] = [];
  const weeks: number[] = [];
  let weekBuckets = 0;
  let pageBytes = 0;
  // Warm-up, then measured rounds; every page of the workspace in turn.
  for (let round = 0; round < 2 + Math.ceil(samples / Math.ceil(vehicles / 500)); round += 1) {
    let cursor: string | null = null;
    do {
      const answer = await get(`/v1/workspaces/${workspaceId}/vehicles?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      const parsed = JSON.parse(answer.body) as { items: unknown[]; nextCursor: string | null };
      cursor = parsed.nextCursor;
      if (round >= 2 && pages.length < samples) {
        pages.push(answer.ms);
        pageBytes = Math.max(pageBytes, answer.body.length);
      }
    } while (cursor);
  }
  const from = new Date(Date.now() - 86_400_000).toISOString();
  for (let i = 0; i < samples + 10; i += 1) {
    const vehicleId = vehicleIds[(i * 7919) % vehicleIds.length]!;
    const history = await get(`/v1/workspaces/${workspaceId}/vehicles/${vehicleId}/history?signal=soc_pct&from=${from}&limit=5000`);
    if (i >= 10) histories.push(history.ms);
    const health = await get(`/v1/workspaces/${workspaceId}/health`);
    if (i >= 10) healths.push(health.ms);
  }
  const weekFrom = new Date(Date.now() - weekMs).toISOString();
  for (let i = 0; i < samples + 10; i += 1) {
    const vehicleId = vehicleIds[i % weekVehicles]!;
    const week = await get(`/v1/workspaces/${workspaceId}/vehicles/${vehicleId}/history?signal=soc_pct&bucket=1h&from=${weekFrom}&order=desc&limit=2016`);
    if (i >= 10) weeks.push(week.ms);
    weekBuckets = Math.max(weekBuckets, (JSON.parse(week.body) as { items: unknown[] }).items.length);
  }
  // The onboarding list: its first page, and each page after it by cursor, in turn.
  const discoveredPages: number[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < samples + 10; i += 1) {
    const answer = await get(`/v1/workspaces/${workspaceId}/discovered-devices?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    cursor = (JSON.parse(answer.body) as { nextCursor: string | null }).nextCursor;
    if (i >= 10) discoveredPages.push(answer.ms);
  }
  // The parity report: two to warm up, then each answer checked against the seed as it is timed.
  const parityReports: number[] = [];
  for (let i = 0; i < paritySamples + 2; i += 1) {
    const answer = await get(`/v1/workspaces/${workspaceId}/cutover/parity?window=${parityWindowHours}h`);
    checkParityReport(answer.body, parity, vehicles);
    if (i >= 2) parityReports.push(answer.ms);
  }
  await bench.close();
  const line = (name: string, values: number[], goal: string) =>
    `${backend.padEnd(9)} ${name.padEnd(34)} p50 ${percentile(values, 50).toFixed(1).padStart(6)} ms   p99 ${percentile(values, 99).toFixed(1).padStart(6)} ms   (${values.length} requests${goal})`;
  process.stdout.write(
    [
      `${backend.padEnd(9)} seeded ${vehicles} vehicles x ${signalNames.length} signals x ${readingsPerSignal} readings (${vehicles * signalNames.length * readingsPerSignal} history rows) in ${seedSeconds.toFixed(0)} s`,
      line('vehicles page (500, with snapshot)', pages, `; ${(pageBytes / 1024).toFixed(0)} KiB each${backend === 'postgres' ? '; goal p99 <= 50 ms' : ''}`),
      line("one vehicle's 24 h soc history", histories, ''),
      line('workspace health', healths, backend === 'postgres' ? '; goal p99 <= 100 ms' : ''),
      line("one vehicle's week chart, 1 h", weeks, `; ${weekBuckets} buckets from ${Math.floor(weekMs / 60_000)} readings${backend === 'postgres' ? '; goal p99 <= 50 ms' : ''}`),
      line('discovered devices page (100)', discoveredPages, `; ${discovered} discovered, pages in turn`),
      `${backend.padEnd(9)} seeded parity: ${parity.hourRows} parity_hours rows (${vehicles} vehicles x ${paritySignals.length} signals x ${parity.hourRows / vehicles / paritySignals.length} h), ${parity.unpairedRows} unpaired shadow readings, in ${parity.seconds.toFixed(0)} s of the seed`,
      line(`parity report, ${parityWindowHours} h (${vehicles.toLocaleString('en-US')} vehicles x ${paritySignals.length} signals)`, parityReports, backend === 'postgres' ? '; goal p99 <= 2000 ms' : ''),
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  process.stdout.write(`bench:read  one workspace, ${vehicles} vehicles, ${readingsPerSignal} readings of each signal\n`);
  await onBenchDatabases(runOn);
}

await main();
process.exit(0);
