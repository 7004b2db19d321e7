/**
 * `npm run bench:stream`: the stream path at fleet size, every part its own process on loopback. 2,000 Tesla vehicles
 * through the MQTT dispatcher path (a feed publishing as fleet-telemetry's MQTT dispatcher does, to the Mosquitto of
 * this machine at 127.0.0.1:1883) and 2,000 Traccar devices on one websocket (a feed serving as a Traccar server
 * does), each once a second, into `fleetwire stream` (the compiled build, default settings: a 1 s coalescing window)
 * and from it into `fleetwire core` on PostgreSQL, in a fresh schema, for 60 s.
 *
 * Lag is from publish to the committed snapshot, less the coalescing window, measured on one signal per message
 * (`heading_deg`: Tesla's `GpsHeading`, Traccar's `course`). A stored reading is the newest of its window, which the
 * device's first message after its previous stored one opened; the update cannot leave before that message's publish
 * plus the window, so that is what the commit is measured from. The commit time has two bounds:
 * - from the history row's `ingested_at` (the ingest transaction's start, so short of the commit by the rest of the
 *   transaction): every reading that was stored;
 * - from a poll of `signal_snapshot` every BENCH_STREAM_POLL_MS (100): the poll's start when it first saw the
 *   reading, so late by at most one poll interval; readings replaced within one interval are not seen this way
 *   (0 turns the poll off, to see what it costs the rest).
 * Publish time: a Traccar position's fix time is the moment it was sent, so the observed time is the publish time; an
 * MQTT metric carries no time (Fleetwire stamps its arrival), so the Tesla feed publishes the second's number as the
 * value and records when each message left. The first BENCH_STREAM_WARMUP_SECONDS (5) are not counted.
 *
 * Also: sustained committed readings/s, what was still on its way when the load stopped (committed afterwards) and
 * how long it took to drain, the stream process's backlog from its /metrics over the run, and its RSS and CPU sampled
 * every second from /proc (core's too, for comparison). Not part of `npm test`: it reports figures, asserts nothing.
 */
import { spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { openPostgres, type Database } from '../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../src/core/db/history-partitions.ts';
import { migrate } from '../src/core/db/migrate.ts';
import { createConnection } from '../src/core/registry/connections.ts';
import { createWorkspace } from '../src/core/registry/workspaces.ts';
import { freePort } from '../test/support/processes.ts';
import { withSearchPath } from '../test/support/database.ts';
import { benchTraccarDevice, benchVin, type FeedCommand, type FeedReport } from './stream-schedule.ts';
import { withFreshSchema } from './support.ts';

const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const settings = {
  tesla: setting('BENCH_STREAM_TESLA', 2000),
  traccar: setting('BENCH_STREAM_TRACCAR', 2000),
  seconds: setting('BENCH_STREAM_SECONDS', 60),
  warmupSeconds: setting('BENCH_STREAM_WARMUP_SECONDS', 5),
  pollMs: setting('BENCH_STREAM_POLL_MS', 100),
  coalesceMs: setting('BENCH_STREAM_COALESCE_MS', 1000),
  broker: process.env.BENCH_STREAM_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
};
const root = fileURLToPath(new URL('..', import.meta.url));
const traccarReadingsPerPosition = 6;
const clockTicks = 100;

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(0)} ms` : 'n/a');
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
const lagLine = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${ms(percentile(sorted, 0.5))}  p99 ${ms(percentile(sorted, 0.99))}  max ${ms(sorted.at(-1) ?? Number.NaN)}  (${int(sorted.length)} readings)`;
};

// ---------------------------------------------------------------------------------------------------------------
// Processes.

interface Fleetwire {
  child: ChildProcess;
  output(): string;
}

function startFleetwire(command: 'core' | 'stream', env: Record<string, string>): Fleetwire {
  const child = spawn(process.execPath, [join(root, 'bin/fleetwire.js'), command], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let text = '';
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => text };
}

/** SIGTERM, SIGKILL after 15 s; resolves once it has exited. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, running?: Fleetwire): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (running && running.child.exitCode !== null) throw new Error(`${what}: the process exited:\n${running.output()}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${running ? `; output:\n${running.output()}` : ''}`);
    await sleep(200);
  }
}

interface Feed {
  child: ChildProcess;
  url: string;
  connected: Promise<void>;
  run(startMs: number, seconds: number): Promise<Extract<FeedReport, { done: unknown }>['done']>;
}

async function startFeed(file: string, args: string[]): Promise<Feed> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  let connect: () => void = () => undefined;
  const connected = new Promise<void>((resolve) => (connect = resolve));
  let finish: (done: Extract<FeedReport, { done: unknown }>['done']) => void = () => undefined;
  const done = new Promise<Extract<FeedReport, { done: unknown }>['done']>((resolve) => (finish = resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (report: FeedReport) => {
      if ('ready' in report) resolve(report.ready.url);
      else if ('connected' in report) connect();
      else finish(report.done);
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before it was ready`)));
  });
  return {
    child,
    url,
    connected,
    run(startMs, seconds) {
      child.send({ start: { startMs, seconds } } satisfies FeedCommand);
      return done;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// What the bench watches: /proc, the stream process's metrics, the snapshot.

interface ProcSample {
  atMs: number;
  rssKib: number;
  cpuTicks: number;
}

function procSample(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, inside parentheses): utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { atMs: Date.now(), rssKib: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function procSummary(samples: readonly ProcSample[]) {
  if (samples.length < 2) return { peakRssKib: Number.NaN, meanRssKib: Number.NaN, peakCpuPct: Number.NaN, meanCpuPct: Number.NaN };
  const cpu = samples.slice(1).map((s, i) => ((s.cpuTicks - samples[i]!.cpuTicks) / clockTicks / ((s.atMs - samples[i]!.atMs) / 1000)) * 100);
  const first = samples[0]!;
  const last = samples.at(-1)!;
  return {
    peakRssKib: Math.max(...samples.map((s) => s.rssKib)),
    meanRssKib: samples.reduce((n, s) => n + s.rssKib, 0) / samples.length,
    peakCpuPct: Math.max(...cpu),
    meanCpuPct: ((last.cpuTicks - first.cpuTicks) / clockTicks / ((last.atMs - first.atMs) / 1000)) * 100,
  };
}

async function streamMetrics(port: number, serviceToken: string): Promise<Record<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${serviceToken}` } });
  const text = await response.text();
  const out: Record<string, number> = {};
  const heap = /^fleetwire_stream_nodejs_(heap_size_used_bytes|heap_size_total_bytes|external_memory_bytes) (\S+)$/gm;
  for (const match of text.matchAll(heap)) out[match[1]!] = Number(match[2]);
  for (const match of text.matchAll(/^fleetwire_stream_(readings\{outcome="(\w+)"\}|connections\{state="(\w+)"\}|bad_frames|reconnects) (\S+)$/gm)) {
    out[match[2] ?? (match[3] ? `connections_${match[3]}` : match[1]!)] = Number(match[4]);
  }
  return out;
}

interface Fleet {
  workspaceId: string;
  teslaConnectionId: string;
  /** vehicle id -> which feed and which device of it. */
  vehicles: Map<string, { provider: 'tesla' | 'traccar'; index: number }>;
}

/** One workspace, a Tesla Fleet Telemetry connection on the broker and a Traccar one on the feed, every device bound. */
async function seed(db: Database, secretKey: Buffer, teslaUrl: string, traccarUrl: string, traccarToken: string): Promise<Fleet> {
  const workspace = await createWorkspace(db, { name: 'bench:stream' });
  const tesla = await createConnection(db, secretKey, workspace.id, { provider: 'tesla-fleet-telemetry', transport: 'stream', baseUrl: teslaUrl, credentials: {} });
  const traccar = await createConnection(db, secretKey, workspace.id, { provider: 'traccar', transport: 'stream', baseUrl: traccarUrl, credentials: { token: traccarToken } });
  const vehicles = new Map<string, { provider: 'tesla' | 'traccar'; index: number }>();
  const bind = async (connectionId: string, externalIds: string[], provider: 'tesla' | 'traccar') => {
    const ids = externalIds.map(() => randomUUID());
    ids.forEach((id, index) => vehicles.set(id, { provider, index }));
    await db.query(`INSERT INTO vehicles (workspace_id, id, name) SELECT $1, id, ext FROM unnest($2::uuid[], $3::text[]) AS t(id, ext)`, [workspace.id, ids, externalIds]);
    await db.query(
      `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id) SELECT $1, $2, ext, id FROM unnest($3::text[], $4::uuid[]) AS t(ext, id)`,
      [workspace.id, connectionId, externalIds, ids],
    );
  };
  await bind(tesla.id, Array.from({ length: settings.tesla }, (_, i) => benchVin(i)), 'tesla');
  await bind(traccar.id, Array.from({ length: settings.traccar }, (_, i) => benchTraccarDevice(i).uniqueId), 'traccar');
  return { workspaceId: workspace.id, teslaConnectionId: tesla.id, vehicles };
}

/** Where a heading reading came from: its feed, device and the second of the load it was published in. */
function secondOf(fleet: Fleet, vehicleId: string, observedMs: number, value: number, startMs: number) {
  const vehicle = fleet.vehicles.get(vehicleId);
  if (!vehicle) return undefined;
  const second = vehicle.provider === 'tesla' ? Math.round(value * 10) : Math.round((observedMs - startMs - (vehicle.index * 1000) / settings.traccar) / 1000);
  return { ...vehicle, second };
}

// ---------------------------------------------------------------------------------------------------------------

async function run(url: string): Promise<void> {
  const build = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('the build failed');

  await withFreshSchema(url, 'fw_bench_stream', async ({ schema, jobSchema }) => {
    const db = openPostgres({ url, searchPath: schema, poolSize: 2 });
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-stream-'));
    const started: (Fleetwire | Feed)[] = [];
    let teslaConnectionId: string | undefined;
    try {
      await migrate(db);
      await ensureHistoryPartitions(db, [Date.now() - 86_400_000, Date.now() + 86_400_000]);
      const secretKey = randomBytes(32);
      const serviceToken = `fws_bench_${randomBytes(16).toString('hex')}`;
      const adminToken = `fwa_bench_${randomBytes(16).toString('hex')}`;
      const traccarToken = `bench-${randomBytes(8).toString('hex')}`;
      const topicBase = `fwbench${randomBytes(4).toString('hex')}`;

      const teslaFeed = await startFeed('./stream-tesla.ts', [settings.broker, topicBase, String(settings.tesla)]);
      const traccarFeed = await startFeed('./stream-traccar.ts', [traccarToken, String(settings.traccar)]);
      started.push(teslaFeed, traccarFeed);
      const fleet = await seed(db, secretKey, teslaFeed.url, traccarFeed.url, traccarToken);
      teslaConnectionId = fleet.teslaConnectionId;

      const corePort = await freePort();
      const core = startFleetwire('core', {
        DATABASE_URL: withSearchPath(url, schema),
        FLEETWIRE_JOB_SCHEMA: jobSchema,
        FLEETWIRE_SCHEDULER: 'external',
        FLEETWIRE_PORT: String(corePort),
        FLEETWIRE_DATA_DIR: join(dataDir, 'core'),
        FLEETWIRE_ADMIN_TOKEN: adminToken,
        FLEETWIRE_SERVICE_TOKEN: serviceToken,
        FLEETWIRE_SECRET_KEY: secretKey.toString('hex'),
        FLEETWIRE_LOG_LEVEL: 'warn',
      });
      started.push(core);
      const coreUrl = `http://127.0.0.1:${corePort}`;
      await until('core to be ready', async () => ((await fetch(`${coreUrl}/readyz`)).ok ? true : undefined), 60_000, core);

      const streamPort = await freePort();
      const stream = startFleetwire('stream', {
        FLEETWIRE_CORE_URL: coreUrl,
        FLEETWIRE_SERVICE_TOKEN: serviceToken,
        FLEETWIRE_PORT: String(streamPort),
        FLEETWIRE_DATA_DIR: join(dataDir, 'stream'),
        FLEETWIRE_STREAM_COALESCE_MS: String(settings.coalesceMs),
        FLEETWIRE_LOG_LEVEL: 'warn',
      });
      started.push(stream);
      const streamPid = stream.child.pid!;
      const corePid = core.child.pid!;
      // Both connections up (the gauge is refreshed with each status report, every 5 s) and the socket open.
      await until(
        'the stream process to hold both connections, connected',
        async () => ((await streamMetrics(streamPort, serviceToken)).connections_up === 2 ? true : undefined),
        60_000,
        stream,
      );
      await traccarFeed.connected;

      // The load.
      const { seconds, warmupSeconds, pollMs } = settings;
      const startMs = Date.now() + 1000;
      const measuredFromMs = startMs + warmupSeconds * 1000;
      const loadEndsMs = startMs + seconds * 1000;
      const teslaDone = teslaFeed.run(startMs, seconds);
      const traccarDone = traccarFeed.run(startMs, seconds);

      const streamProc: ProcSample[] = [];
      const coreProc: ProcSample[] = [];
      const backlog: { atS: number; buffered: number }[] = [];
      /** The stream process's V8 heap (used, total) and memory outside it (buffers), MiB, at each scrape. */
      const heaps: { used: number; total: number; external: number }[] = [];
      let sampling = true;
      const sampler = (async () => {
        for (let next = startMs; sampling; next += 1000) {
          await sleep(Math.max(0, next - Date.now()));
          if (!sampling) break;
          const s = procSample(streamPid);
          const c = procSample(corePid);
          // The load's seconds after the warm-up only: not the drain.
          const counted = next >= measuredFromMs && next <= loadEndsMs;
          if (s && counted) streamProc.push(s);
          if (c && counted) coreProc.push(c);
          if ((next - startMs) % 5000 === 0) {
            const m = await streamMetrics(streamPort, serviceToken).catch(() => undefined);
            if (m) backlog.push({ atS: (next - startMs) / 1000, buffered: m.buffered ?? Number.NaN });
            if (m && counted) heaps.push({ used: (m.heap_size_used_bytes ?? 0) / 2 ** 20, total: (m.heap_size_total_bytes ?? 0) / 2 ** 20, external: (m.external_memory_bytes ?? 0) / 2 ** 20 });
          }
        }
      })();

      // The snapshot, polled: when each reading was first seen committed.
      const seenKey = new Map<string, number>();
      const seenAt: { provider: 'tesla' | 'traccar'; index: number; second: number; seenMs: number; observedMs: number }[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling && pollMs > 0) {
          const pollStart = Date.now();
          const { rows } = await db.query<{ vehicle_id: string; observed_ms: number; value: number }>(
            `SELECT vehicle_id::text, (extract(epoch FROM observed_at) * 1000)::float8 AS observed_ms, (value #>> '{}')::float8 AS value
               FROM signal_snapshot WHERE workspace_id = $1 AND signal = 'heading_deg'`,
            [fleet.workspaceId],
          );
          for (const row of rows) {
            if (seenKey.get(row.vehicle_id) === row.observed_ms) continue;
            seenKey.set(row.vehicle_id, row.observed_ms);
            const origin = secondOf(fleet, row.vehicle_id, row.observed_ms, row.value, startMs);
            if (origin) seenAt.push({ ...origin, seenMs: pollStart, observedMs: row.observed_ms });
          }
          await sleep(Math.max(0, pollStart + pollMs - Date.now()));
        }
      })();

      // Bounded: feeds that have not finished 30 s after the load's end are taken for stuck.
      let stuckTimer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_resolve, reject) => {
        stuckTimer = setTimeout(() => reject(new Error(`the feeds did not finish; stream output:\n${stream.output()}\ncore output:\n${core.output()}`)), seconds * 1000 + 31_000);
      });
      const [tesla, traccar] = await Promise.race([Promise.all([teslaDone, traccarDone]), stuck]).finally(() => clearTimeout(stuckTimer));
      const endedMs = Date.now();
      const countHeadings = async () =>
        (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM signal_history WHERE workspace_id = $1 AND signal = 'heading_deg'`, [fleet.workspaceId])).rows[0]!.n;
      const committedAtEnd = await countHeadings();
      const metricsAtEnd = await streamMetrics(streamPort, serviceToken).catch(() => ({}) as Record<string, number>);

      // Drain: until the count of stored headings has not moved for 3 s (at most 120 s).
      let committedFinal = committedAtEnd;
      let lastChangeMs = endedMs;
      for (let deadline = endedMs + 120_000; Date.now() < deadline && Date.now() - lastChangeMs < 3000; ) {
        await sleep(200);
        const n = await countHeadings();
        if (n !== committedFinal) {
          committedFinal = n;
          lastChangeMs = Date.now();
        }
      }
      polling = false;
      sampling = false;
      await Promise.all([poller, sampler]);
      // One more status report, so the metrics say what became of everything.
      await sleep(5500);
      const metricsFinal = await streamMetrics(streamPort, serviceToken).catch(() => ({}) as Record<string, number>);
      const hwmKib = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${streamPid}/status`, 'utf8'))?.[1] ?? Number.NaN);

      // Every stored heading, with its transaction's start.
      const { rows: history } = await db.query<{ vehicle_id: string; observed_ms: number; value: number; ingested_ms: number }>(
        `SELECT vehicle_id::text, (extract(epoch FROM observed_at) * 1000)::float8 AS observed_ms, (value #>> '{}')::float8 AS value,
                (extract(epoch FROM ingested_at) * 1000)::float8 AS ingested_ms
           FROM signal_history WHERE workspace_id = $1 AND signal = 'heading_deg'`,
        [fleet.workspaceId],
      );
      const { rows: totals } = await db.query<{ provider: string; all_rows: number; measured: number }>(
        `SELECT provider, count(*)::int AS all_rows, count(*) FILTER (WHERE ingested_at >= to_timestamp($2 / 1000.0) AND ingested_at < to_timestamp($3 / 1000.0))::int AS measured
           FROM signal_history WHERE workspace_id = $1 GROUP BY provider`,
        [fleet.workspaceId, measuredFromMs, loadEndsMs],
      );

      // A stored reading is the newest of its coalescing window, which the first reading after the previous stored one
      // opened: the update could not leave before that reading's publish plus the window, so the lag beyond the window
      // is the commit less that. (The reading's own publish-to-commit is shorter when it came late in its window.)
      const feeds = { tesla, traccar };
      const publishedMs = (provider: 'tesla' | 'traccar', index: number, second: number) => feeds[provider].publishedAtMs?.[index * seconds + second] ?? Number.NaN;
      const stored = new Map<string, number[]>();
      const keyOf = (provider: string, index: number) => `${provider}|${index}`;
      const origins = history.map((row) => secondOf(fleet, row.vehicle_id, row.observed_ms, row.value, startMs));
      for (const origin of origins) {
        if (!origin) continue;
        const list = stored.get(keyOf(origin.provider, origin.index)) ?? [];
        list.push(origin.second);
        stored.set(keyOf(origin.provider, origin.index), list);
      }
      const openedBy = new Map<string, number>();
      for (const [key, secondsStored] of stored) {
        secondsStored.sort((a, b) => a - b);
        secondsStored.forEach((second, i) => openedBy.set(`${key}|${second}`, i === 0 ? 0 : secondsStored[i - 1]! + 1));
      }
      const windowOpenedMs = (origin: { provider: 'tesla' | 'traccar'; index: number; second: number }) =>
        publishedMs(origin.provider, origin.index, openedBy.get(`${keyOf(origin.provider, origin.index)}|${origin.second}`) ?? origin.second);
      const lag = { tesla: [] as number[], traccar: [] as number[] };
      const lagSeen = { tesla: [] as number[], traccar: [] as number[] };
      const ownLag: number[] = [];
      const lagBy10s = new Map<number, number[]>();
      let warmupMaxMs = 0;
      history.forEach((row, i) => {
        const origin = origins[i];
        if (!origin) return;
        const value = row.ingested_ms - windowOpenedMs(origin) - settings.coalesceMs;
        if (!Number.isFinite(value)) return;
        if (origin.second < warmupSeconds) {
          warmupMaxMs = Math.max(warmupMaxMs, value);
          return;
        }
        lag[origin.provider].push(value);
        ownLag.push(row.ingested_ms - publishedMs(origin.provider, origin.index, origin.second));
        const bucket = Math.floor(origin.second / 10) * 10;
        const values = lagBy10s.get(bucket) ?? [];
        values.push(value);
        lagBy10s.set(bucket, values);
      });
      for (const seen of seenAt) {
        if (seen.second < warmupSeconds) continue;
        const value = seen.seenMs - windowOpenedMs(seen) - settings.coalesceMs;
        if (Number.isFinite(value)) lagSeen[seen.provider].push(value);
      }

      const stream0 = procSummary(streamProc);
      const core0 = procSummary(coreProc);
      const published = tesla.sent + traccar.sent;
      const committedReadings = totals.reduce((n, t) => n + t.measured, 0);
      const measuredS = (loadEndsMs - measuredFromMs) / 1000;
      const pad = ' '.repeat(11);
      const all = [...lag.tesla, ...lag.traccar];
      const allSeen = [...lagSeen.tesla, ...lagSeen.traccar];
      // The goal is judged on the bound from above, the snapshot poll's; without the poll, on the one from below.
      const p99Seen = percentile([...(allSeen.length > 0 ? allSeen : all)].sort((a, b) => a - b), 0.99);
      process.stdout.write(
        `postgres   load: ${int(tesla.sent)} Tesla MQTT messages (${int(settings.tesla)} vehicles) + ${int(traccar.sent)} Traccar positions (${int(settings.traccar)} devices, one socket) ` +
          `over ${seconds} s = ${int(published / seconds)} messages/s; feeds at most ${ms(tesla.lateMs)} / ${ms(traccar.lateMs)} behind schedule\n` +
          `${pad}offered ${int(settings.tesla + settings.traccar * traccarReadingsPerPosition)} readings/s; committed ${int(committedReadings / measuredS)} readings/s sustained after the ${warmupSeconds} s warm-up (${totals.map((t) => `${t.provider} ${int(t.measured / measuredS)}`).join(', ')}); ` +
          `headings stored ${int(committedFinal)} of ${int(published)} published (the rest replaced by a newer one within the ${settings.coalesceMs} ms window)\n` +
          `${pad}lag publish (of the reading that opened the window) -> committed, less the ${settings.coalesceMs} ms window, from ingested_at (transaction start): ${lagLine(all)}\n` +
          `${pad}  Tesla ${lagLine(lag.tesla)}\n${pad}  Traccar ${lagLine(lag.traccar)}\n` +
          (pollMs > 0
            ? `${pad}from the snapshot poll (every ${pollMs} ms, late by at most that): ${lagLine(allSeen)}\n` +
              `${pad}  Tesla ${lagLine(lagSeen.tesla)}\n${pad}  Traccar ${lagLine(lagSeen.traccar)}\n`
            : `${pad}no snapshot poll (BENCH_STREAM_POLL_MS=0)\n`) +
          `${pad}each stored reading's own publish -> transaction start, window included: ${lagLine(ownLag)}\n` +
          `${pad}p99 by 10 s of the load (ingested_at, by publish second): ${[...lagBy10s].sort((a, b) => a[0] - b[0]).map(([s, v]) => `${s}s ${ms(percentile(v.sort((a, b) => a - b), 0.99))}`).join(', ')}; in the warm-up at most ${ms(warmupMaxMs)}\n` +
          `${pad}stream backlog (readings in open windows or buffered, /metrics, refreshed every 5 s; the windows alone hold up to ${int(settings.tesla + settings.traccar * traccarReadingsPerPosition)}): ${backlog.map((b) => `${b.atS}s ${int(b.buffered)}`).join(', ')}\n` +
          `${pad}when the load stopped: ${int(committedFinal - committedAtEnd)} headings published and not yet committed (each device's open window holds at most one: ${int(settings.tesla + settings.traccar)}), ` +
          `all committed ${((lastChangeMs - endedMs) / 1000).toFixed(2)} s later; the stream held ${int(metricsAtEnd.buffered ?? Number.NaN)} readings (as of its last report)\n` +
          `${pad}stream readings in ${int(metricsFinal.in ?? Number.NaN)}, delivered ${int(metricsFinal.delivered ?? Number.NaN)}, coalesced ${int(metricsFinal.coalesced ?? Number.NaN)}, ` +
          `dropped ${int(metricsFinal.dropped ?? Number.NaN)}, dead-lettered ${int(metricsFinal.dead_lettered ?? Number.NaN)}, buffered ${int(metricsFinal.buffered ?? Number.NaN)}; ` +
          `bad frames ${int(metricsFinal.bad_frames ?? Number.NaN)}, reconnects ${int(metricsFinal.reconnects ?? Number.NaN)} (Traccar: ${traccarReadingsPerPosition} readings a position)\n` +
          `${pad}stream process: RSS peak ${mib(stream0.peakRssKib)} mean ${mib(stream0.meanRssKib)} (VmHWM ${mib(hwmKib)}); CPU mean ${stream0.meanCpuPct.toFixed(0)} % peak ${stream0.peakCpuPct.toFixed(0)} % of one core\n` +
          `${pad}  its V8 heap used / total / outside the heap at the 5 s scrapes: max ${Math.max(...heaps.map((h) => h.used)).toFixed(0)} / ${Math.max(...heaps.map((h) => h.total)).toFixed(0)} / ${Math.max(...heaps.map((h) => h.external)).toFixed(0)} MiB, ` +
          `mean ${(heaps.reduce((n, h) => n + h.used, 0) / heaps.length).toFixed(0)} / ${(heaps.reduce((n, h) => n + h.total, 0) / heaps.length).toFixed(0)} / ${(heaps.reduce((n, h) => n + h.external, 0) / heaps.length).toFixed(0)} MiB\n` +
          `${pad}core process:   RSS peak ${mib(core0.peakRssKib)} mean ${mib(core0.meanRssKib)}; CPU mean ${core0.meanCpuPct.toFixed(0)} % peak ${core0.peakCpuPct.toFixed(0)} % of one core\n` +
          `${pad}goals: lag p99 <= 500 ms beyond the window ${p99Seen <= 500 ? 'met' : 'not met'} (${ms(p99Seen)}, ${allSeen.length > 0 ? 'snapshot poll, a bound from above' : 'transaction start, a bound from below'}); ` +
          `stream RSS <= 150 MB ${stream0.peakRssKib * 1024 <= 150e6 ? 'met' : 'not met'} (peak ${((stream0.peakRssKib * 1024) / 1e6).toFixed(0)} MB)\n`,
      );
    } finally {
      for (const part of started.reverse()) await stopChild(part.child);
      if (teslaConnectionId) {
        // The stream process's MQTT session is persistent (clean: false): the broker would keep it, and queue for it.
        const client = await mqtt.connectAsync(settings.broker, { clientId: `fleetwire-${teslaConnectionId}`, clean: true }).catch(() => undefined);
        await client?.endAsync();
      }
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

const url = process.env.FLEETWIRE_BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
process.stdout.write(
  `bench:stream  ${settings.tesla} Tesla vehicles (MQTT dispatcher, ${settings.broker}) + ${settings.traccar} Traccar devices (one socket), each once a second for ` +
    `${settings.seconds} s, through \`fleetwire stream\` (coalescing window ${settings.coalesceMs} ms) into \`fleetwire core\` on PostgreSQL; the first ${settings.warmupSeconds} s not counted\n`,
);
if (!url) process.stdout.write('postgres   skipped (set FLEETWIRE_BENCH_DATABASE_URL or DATABASE_URL)\n');
else await run(url);
