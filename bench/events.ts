/**
 * `npm run bench:events`: what events out cost and how fast they arrive, in one run on one database.
 *
 * - Latency: a core app on loopback with its own event hub and webhook dispatcher (production defaults, and the
 *   connection pool and ingest concurrency a core process has by default) and one subscription to every vehicle
 *   event type, delivered to a receiver on loopback (a child process). The ingest API (`POST /internal/v1/ingest`)
 *   is driven open-loop at a steady rate: 10 batches a second, each a slice of the fleet, so every vehicle reports
 *   once a second. Each visit's readings are chosen to cause a known number of events: `charging_state` turns every
 *   visit (charging started or stopped), `soc_pct` crosses the 80 % threshold every other visit (half the fleet each
 *   visit), and one state change: 2.5 a visit. Latency is the receiver's time of receipt minus the time the ingest
 *   answer arrived back at the client. That answer comes after the commit, so this understates the true latency by
 *   the time from the commit to the answer's arrival (the rest of the handler and the trip back, milliseconds); the
 *   same figure from the event's `created_at` (its transaction's start, before the commit) is printed next to it as
 *   the bound from above.
 * - Outbox cost: `ingestBatch` called directly with events written against the same call with `events: false`, on
 *   twin fleets of 1,000 vehicles x 6 signals (the `bench:ingest` mix of new, late and duplicate readings), rounds
 *   alternating, with an event hub running. After each batch, of either arm, the hub reads the log's head, and
 *   that read is counted in the arm (positions are given as events are written, so the insert pays for them).
 *
 * Runs on PGlite (at a quarter of the rate), and on PostgreSQL too when FLEETWIRE_BENCH_DATABASE_URL (or
 * DATABASE_URL) names one. Not part of `npm test`: it reports figures, it asserts nothing.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { createBenchFleet, mixedRoundReadings, onBenchDatabases, startBenchApp, type BenchFleet } from './support.ts';
import type { Receipt } from './webhook-receiver.ts';
import type { Database } from '../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../src/core/db/history-partitions.ts';
import { migrate } from '../src/core/db/migrate.ts';
import { createEventHub } from '../src/core/events/event-hub.ts';
import { ingestBatch, type IngestOptions } from '../src/core/ingest/ingest-batch.ts';

const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const settings = {
  pglite: { rate: setting('BENCH_EVENTS_RATE_PGLITE', 500), seconds: setting('BENCH_EVENTS_SECONDS_PGLITE', 20), rounds: setting('BENCH_ROUNDS_PGLITE', 12) },
  postgres: { rate: setting('BENCH_EVENTS_RATE_POSTGRES', 2000), seconds: setting('BENCH_EVENTS_SECONDS_POSTGRES', 40), rounds: setting('BENCH_ROUNDS_POSTGRES', 30) },
};
const outboxVehicles = setting('BENCH_VEHICLES', 1000);
/**
 * Pool and ingest concurrency as a core process sizes them by default (`FLEETWIRE_DB_POOL_SIZE` 10, ingest two under
 * it; two batches at once on PGlite), so the event hub and the dispatcher find a connection while ingest is busy.
 */
const sizing = { postgres: { poolSize: 10, ingestConcurrency: 8 }, pglite: { ingestConcurrency: 2 } };

const batchesPerSecond = 10;
const batchMs = 1000 / batchesPerSecond;
/**
 * Batches of the first seconds are sent but not counted in the latency: a process just started delivers slower
 * (code not yet optimized, connections opening, a table without statistics) and catches up within them. Their worst
 * latency is reported apart.
 */
const warmupSeconds = 5;
const eventsPerVisit = 2.5;
const vehicleTypes = ['fleetwire.vehicle.state.changed', 'fleetwire.vehicle.charging.started', 'fleetwire.vehicle.charging.stopped', 'fleetwire.vehicle.soc.crossed'];

/** Epoch milliseconds with sub-millisecond precision, comparable across processes on one host. */
const wallMs = () => performance.timeOrigin + performance.now();

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(n < 10 ? 1 : 0)} ms` : 'n/a');
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const k = (n: number) => `${(n / 1000).toFixed(1)}k`;

// ---------------------------------------------------------------------------------------------------------------
// Latency: ingest commit to webhook receipt.

/**
 * Visit `visit` of vehicle `v`: charging turns every visit (an event each, the first a start from nothing); the
 * state of charge moves between 78 and 82 every other visit, phase by vehicle (a crossing of 80 % each time it
 * moves, none on the first visit, which has nothing to cross from); and the visit's state change.
 */
function visitReadings(v: number, visit: number, observedAt: string) {
  return [
    { signal: 'charging_state', value: visit % 2 === 0 ? 'charging' : 'not_charging', observedAt },
    { signal: 'soc_pct', value: (visit + v) % 4 < 2 ? 78 : 82, observedAt },
    { signal: 'speed_kph', value: (visit * 7 + v) % 90, observedAt },
    { signal: 'odometer_km', value: 10_000 + v + visit * 0.01, observedAt },
    { signal: 'location', value: { lat: 52.4 + (v % 100) / 1000, lon: 13.4 + visit / 100_000 }, observedAt },
  ];
}

const visitCrossesSoc = (v: number, visit: number) => visit >= 1 && (visit + v) % 2 === 0;

interface LatencyResult {
  batches: number;
  seconds: number;
  expected: Record<string, number>;
  logged: Record<string, number>;
  received: number;
  duplicates: number;
  missing: number;
  fromAnswer: number[];
  fromStart: number[];
  warmupMaxMs: number;
  ingestAnswers: number[];
  refused: number;
  driverLateMs: number;
  backlogAtEnd: { notReceived: number; positionedBacklog: number };
  /** From the end of the load until everything logged was received; NaN when it never was. */
  drainMs: number;
  readingStatuses: Record<string, number>;
}

async function startReceiver(): Promise<{ url: string; count(): Promise<number>; receipts(): Promise<Receipt[]>; close(): Promise<void> }> {
  const child = fork(fileURLToPath(new URL('./webhook-receiver.ts', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(message: 'count' | 'dump') =>
    new Promise<T>((resolve) => {
      child.once('message', (answer) => resolve(answer as T));
      child.send(message);
    });
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    child.once('message', (answer) => resolve(answer as { port: number }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the webhook receiver exited (${code})`)));
  });
  return {
    url: `http://127.0.0.1:${port}/fleetwire`,
    count: async () => (await ask<{ count: number }>('count')).count,
    receipts: async () => (await ask<{ receipts: Receipt[] }>('dump')).receipts,
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}

async function countLogged(db: Database, workspaceId: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ type: string; n: string }>(
    `SELECT type, count(*)::text AS n FROM events WHERE workspace_id = $1 AND type = ANY($2::text[]) GROUP BY type`,
    [workspaceId, vehicleTypes],
  );
  return Object.fromEntries(rows.map((r) => [r.type, Number(r.n)]));
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

async function measureLatency(db: Database, jobSchema: string, rate: number, seconds: number, ingestConcurrency: number): Promise<LatencyResult> {
  const perBatch = Math.max(1, Math.round(rate / batchesPerSecond / eventsPerVisit));
  const fleetSize = perBatch * batchesPerSecond;
  const secretKey = randomBytes(32);
  const fleet = await createBenchFleet(db, secretKey, 'bench events latency', fleetSize);
  const receiver = await startReceiver();
  const bench = await startBenchApp(db, { jobSchema, secretKey, webhooks: { allowPrivate: true }, ingestConcurrency });
  const clients = new Agent({ keepAliveTimeout: 60_000, connections: 8 });
  try {
    const subscribed = await request(`${bench.baseUrl}/v1/workspaces/${fleet.workspaceId}/webhooks`, {
      method: 'POST',
      dispatcher: bench.dispatcher,
      headers: { authorization: `Bearer ${bench.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url, types: vehicleTypes, description: 'bench:events receiver' }),
    });
    const subscription = (await subscribed.body.json()) as { id: string };
    if (subscribed.statusCode !== 201) throw new Error(`subscribing answered ${subscribed.statusCode}: ${JSON.stringify(subscription)}`);

    // Everything the clients send is built before the clock starts; readings are a second old when sent.
    const batches = seconds * batchesPerSecond;
    const startMs = Date.now() + 2000;
    const observedMs0 = startMs - 1000;
    await ensureHistoryPartitions(db, [observedMs0 - 3600_000, startMs + seconds * 1000 + 3600_000]);
    const expected: Record<string, number> = Object.fromEntries(vehicleTypes.map((t) => [t, 0]));
    const bodies = Array.from({ length: batches }, (_, b) => {
      const group = b % batchesPerSecond;
      const visit = Math.floor(b / batchesPerSecond);
      const observedAt = new Date(observedMs0 + b * batchMs).toISOString();
      const receivedAt = new Date(observedMs0 + b * batchMs + 500).toISOString();
      const updates = Array.from({ length: perBatch }, (_, i) => {
        const v = group * perBatch + i;
        expected['fleetwire.vehicle.state.changed']! += 1;
        expected[visit % 2 === 0 ? 'fleetwire.vehicle.charging.started' : 'fleetwire.vehicle.charging.stopped']! += 1;
        if (visitCrossesSoc(v, visit)) expected['fleetwire.vehicle.soc.crossed']! += 1;
        return benchUpdate(fleet, v, receivedAt, visitReadings(v, visit, observedAt));
      });
      return JSON.stringify({ updates });
    });

    const warmupBatches = warmupSeconds * batchesPerSecond;
    const sentAt = new Float64Array(batches);
    const answeredAt = new Float64Array(batches).fill(Number.NaN);
    const readingStatuses: Record<string, number> = {};
    let refused = 0;
    let driverLateMs = 0;
    const post = async (b: number) => {
      const answer = await request(`${bench.baseUrl}/internal/v1/ingest`, {
        method: 'POST',
        dispatcher: clients,
        headers: { authorization: `Bearer ${bench.serviceToken}`, 'content-type': 'application/json' },
        body: bodies[b]!,
      });
      const text = await answer.body.text();
      const at = wallMs();
      if (answer.statusCode !== 200) {
        refused += 1;
        return;
      }
      answeredAt[b] = at;
      const parsed = JSON.parse(text) as { results: { readings: { status: string }[] }[] };
      for (const result of parsed.results) for (const r of result.readings) readingStatuses[r.status] = (readingStatuses[r.status] ?? 0) + 1;
    };
    const inFlight: Promise<void>[] = [];
    for (let b = 0; b < batches; b += 1) {
      const due = startMs + b * batchMs;
      const wait = due - wallMs();
      if (wait > 0) await sleep(wait);
      sentAt[b] = wallMs();
      driverLateMs = Math.max(driverLateMs, sentAt[b]! - due);
      inFlight.push(post(b));
      // A running deployment's event log has statistics (autovacuum keeps them); a table made a few seconds ago has
      // none, and its reads by position are then planned as if it were empty, scanning all the way to the head.
      if (b === warmupBatches / 2) inFlight.push(db.query('ANALYZE events').then(() => undefined));
    }
    await Promise.all(inFlight);
    const loadEndMs = wallMs();

    // What is still on its way when the load stops: committed but not yet received; and what the subscription's
    // health counts, positioned after its cursor (which moves once a page is recorded, so it may count some received).
    const [loggedAtEnd, receivedAtEnd, health] = await Promise.all([
      countLogged(db, fleet.workspaceId),
      receiver.count(),
      request(`${bench.baseUrl}/v1/workspaces/${fleet.workspaceId}/webhooks/${subscription.id}`, {
        dispatcher: bench.dispatcher,
        headers: { authorization: `Bearer ${bench.adminToken}` },
      }).then((answer) => answer.body.json() as Promise<{ health: { backlog: number } }>),
    ]);
    const logged = loggedAtEnd;
    let drained = false;
    for (let deadline = Date.now() + 120_000; !drained && Date.now() < deadline; ) {
      drained = (await receiver.count()) >= total(logged);
      if (!drained) await sleep(50);
    }
    const drainMs = drained ? wallMs() - loadEndMs : Number.NaN;

    const receipts = await receiver.receipts();
    const { rows } = await db.query<{ id: string; created_ms: number }>(
      `SELECT id, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms FROM events WHERE workspace_id = $1 AND type = ANY($2::text[])`,
      [fleet.workspaceId, vehicleTypes],
    );
    const createdMs = new Map(rows.map((r) => [r.id, r.created_ms]));
    const seen = new Set<string>();
    let duplicates = 0;
    const fromAnswer: number[] = [];
    const fromStart: number[] = [];
    let warmupMaxMs = 0;
    for (const [id, , observedAt, receivedAtMs] of receipts) {
      if (seen.has(id)) {
        duplicates += 1;
        continue;
      }
      seen.add(id);
      const b = Math.round((Date.parse(observedAt) - observedMs0) / batchMs);
      if (b < warmupBatches && Number.isFinite(answeredAt[b])) warmupMaxMs = Math.max(warmupMaxMs, receivedAtMs - answeredAt[b]!);
      if (b < warmupBatches || !(b < batches)) continue;
      if (Number.isFinite(answeredAt[b])) fromAnswer.push(receivedAtMs - answeredAt[b]!);
      const created = createdMs.get(id);
      if (created !== undefined) fromStart.push(receivedAtMs - created);
    }
    const ingestAnswers = Array.from(sentAt, (s, b) => answeredAt[b]! - s).filter(Number.isFinite);
    return {
      batches,
      seconds: (loadEndMs - sentAt[0]!) / 1000,
      expected,
      logged,
      received: seen.size,
      duplicates,
      missing: [...createdMs.keys()].filter((id) => !seen.has(id)).length,
      fromAnswer: fromAnswer.sort((a, b) => a - b),
      fromStart: fromStart.sort((a, b) => a - b),
      warmupMaxMs,
      ingestAnswers: ingestAnswers.sort((a, b) => a - b),
      refused,
      driverLateMs,
      backlogAtEnd: { notReceived: total(loggedAtEnd) - receivedAtEnd, positionedBacklog: health.health.backlog },
      drainMs,
      readingStatuses,
    };
  } finally {
    await bench.close();
    await clients.close();
    await receiver.close();
  }
}

function reportLatency(backend: string, rate: number, r: LatencyResult): void {
  const short = (type: string) => type.replace('fleetwire.vehicle.', '');
  const byType = (counts: Record<string, number>) => vehicleTypes.map((t) => `${short(t)} ${int(counts[t] ?? 0)}`).join(', ');
  const pad = ' '.repeat(11);
  process.stdout.write(
    `${backend.padEnd(10)} latency at ${int(rate)} events/s asked: ${int(total(r.logged))} events in the log (${byType(r.logged)}); ` +
      `expected ${int(total(r.expected))}; ${int(total(r.logged) / r.seconds)} events/s committed over ${r.seconds.toFixed(1)} s\n` +
      `${pad}received ${int(r.received)} (duplicates ${r.duplicates}, in the log but not received ${r.missing})\n` +
      `${pad}commit (ingest answer) to receipt: p50 ${ms(percentile(r.fromAnswer, 0.5))}  p99 ${ms(percentile(r.fromAnswer, 0.99))}  max ${ms(r.fromAnswer.at(-1) ?? Number.NaN)}  ` +
      `(${int(r.fromAnswer.length)} events after ${warmupSeconds} s warm-up; in the warm-up at most ${ms(r.warmupMaxMs)})\n` +
      `${pad}transaction start (created_at) to receipt: p50 ${ms(percentile(r.fromStart, 0.5))}  p99 ${ms(percentile(r.fromStart, 0.99))}  max ${ms(r.fromStart.at(-1) ?? Number.NaN)}\n` +
      `${pad}ingest answers p50 ${ms(percentile(r.ingestAnswers, 0.5))}  p99 ${ms(percentile(r.ingestAnswers, 0.99))}; refused ${r.refused}; ` +
      `readings ${Object.entries(r.readingStatuses).map(([s, n]) => `${s} ${int(n)}`).join(', ')}; driver at most ${ms(r.driverLateMs)} behind schedule\n` +
      `${pad}when the load stopped: ${int(r.backlogAtEnd.notReceived)} events committed and not yet received (subscription backlog ${int(r.backlogAtEnd.positionedBacklog)}); ` +
      `${Number.isFinite(r.drainMs) ? `all received ${(r.drainMs / 1000).toFixed(2)} s later` : 'not all received within 120 s'}\n`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Outbox cost: the same unit of work with and without its events.

/** Round r, as `bench:ingest` sends it: 10 % of vehicles repeat the round before (duplicates), 10 % send older data (late). */
function outboxUpdates(fleet: BenchFleet, vehicles: number, round: number, baseMs: number) {
  const receivedAt = new Date(baseMs + round * 60_000 + 1000).toISOString();
  return mixedRoundReadings(vehicles, round, baseMs).map((readings, v) => benchUpdate(fleet, v, receivedAt, readings));
}

/** Vehicle `v` of a bench fleet reporting `readings` through the fleet's poll connection. */
function benchUpdate(fleet: BenchFleet, v: number, receivedAt: string, readings: unknown[]) {
  return { workspaceId: fleet.workspaceId, provider: 'samsara', connectionId: fleet.connectionId, externalDeviceId: `dev-${v}`, source: 'poll', receivedAt, readings };
}

interface Arm {
  name: 'with' | 'without';
  fleet: BenchFleet;
  options: IngestOptions;
  ingestMs: number;
  headReadMs: number;
  counts: Record<string, number>;
}

interface OutboxResult {
  readings: number;
  arms: Record<Arm['name'], Arm>;
  eventsPerBatch: number;
  batches: number;
}

async function measureOutbox(db: Database, rounds: number): Promise<OutboxResult> {
  const secretKey = randomBytes(32);
  const baseMs = Date.now() - (rounds + 10) * 60_000;
  await ensureHistoryPartitions(db, [baseMs - 3600_000, Date.now()]);
  const arms: Record<Arm['name'], Arm> = {
    with: { name: 'with', fleet: await createBenchFleet(db, secretKey, 'bench outbox with', outboxVehicles), options: {}, ingestMs: 0, headReadMs: 0, counts: {} },
    without: { name: 'without', fleet: await createBenchFleet(db, secretKey, 'bench outbox without', outboxVehicles), options: { events: false }, ingestMs: 0, headReadMs: 0, counts: {} },
  };
  const hub = createEventHub(db);
  await hub.start();
  let readings = 0;
  let eventsMeasured = 0;
  try {
    for (let round = 0; round < rounds + 2; round += 1) {
      const warmup = round < 2;
      const order = round % 2 === 0 ? [arms.with, arms.without] : [arms.without, arms.with];
      for (const arm of order) {
        const updates = outboxUpdates(arm.fleet, outboxVehicles, round, baseMs);
        const before = hub.head();
        const t0 = performance.now();
        const outcome = await ingestBatch(db, updates, arm.options);
        const t1 = performance.now();
        // A read the timer started before the commit may not see the batch's events; the second one does.
        await hub.flush();
        const after = await hub.flush();
        const t2 = performance.now();
        if (warmup) continue;
        arm.ingestMs += t1 - t0;
        arm.headReadMs += t2 - t1;
        if (arm.name === 'with') eventsMeasured += after - before;
        for (const result of outcome.results) for (const r of result.readings) arm.counts[r.status] = (arm.counts[r.status] ?? 0) + 1;
      }
      if (!warmup) readings += outboxVehicles * 6;
    }
  } finally {
    await hub.stop();
  }
  return { readings, arms, eventsPerBatch: eventsMeasured / rounds, batches: rounds };
}

function reportOutbox(backend: string, r: OutboxResult): void {
  const rate = (arm: Arm, withHeadRead: boolean) => (r.readings / (arm.ingestMs + (withHeadRead ? arm.headReadMs : 0))) * 1000;
  const { with: on, without: off } = r.arms;
  const counts = (arm: Arm) => Object.entries(arm.counts).map(([s, n]) => `${s} ${int(n)}`).join(', ');
  const pad = ' '.repeat(11);
  process.stdout.write(
    `${backend.padEnd(10)} outbox    with events ${k(rate(on, true))} readings/s, without ${k(rate(off, true))} readings/s: ratio ${((rate(on, true) / rate(off, true)) * 100).toFixed(0)} %  ` +
      `(${r.batches} batches of ${int(outboxVehicles * 6)} readings each arm, ${int(r.eventsPerBatch)} events a batch)\n` +
      `${pad}ingest call alone: ${k(rate(on, false))} against ${k(rate(off, false))} readings/s, ratio ${((rate(on, false) / rate(off, false)) * 100).toFixed(0)} %; ` +
      `head read after each batch ${ms(on.headReadMs / r.batches)} with events, ${ms(off.headReadMs / r.batches)} without\n` +
      `${pad}outcomes with: ${counts(on)}; without: ${counts(off)}\n`,
  );
}

async function main(): Promise<void> {
  process.stdout.write(
    `bench:events  latency: ${batchesPerSecond} batches/s over the ingest API, each vehicle once a second (5 signals), ${eventsPerVisit} events a visit, ` +
      `${settings.postgres.seconds} s on PostgreSQL at ${int(settings.postgres.rate)} events/s, ${settings.pglite.seconds} s on PGlite at ${int(settings.pglite.rate)} events/s ` +
      `(the first ${warmupSeconds} s not counted)\n` +
      `              outbox cost: ingestBatch with and without events on twin fleets of ${outboxVehicles} vehicles x 6 signals, ` +
      `new/late/duplicate 80/10/10, alternating; after each batch the head is read, counted in its arm\n`,
  );
  await onBenchDatabases(async (backend, db, jobSchema) => {
    await migrate(db);
    const { rate, seconds, rounds } = settings[backend];
    reportLatency(backend, rate, await measureLatency(db, jobSchema, rate, seconds, sizing[backend].ingestConcurrency));
    reportOutbox(backend, await measureOutbox(db, rounds));
  }, { poolSize: sizing.postgres.poolSize });
}

await main();
