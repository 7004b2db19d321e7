/**
 * `npm run soak`: the demo's system under faults for a while, then the books are checked. Not part of `npm test`.
 *
 * On PostgreSQL (FLEETWIRE_SOAK_DATABASE_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test), in
 * a fresh schema dropped at the end: the demo's four simulated fleets (src/demo: Samsara and Geotab polled, Traccar
 * and Tesla Fleet Telemetry streamed, seeded into the demo's two workspaces) on a clock running FLEETWIRE_SOAK_SPEED
 * (10) times faster than the wall, for FLEETWIRE_SOAK_MINUTES (10) minutes, with core (embedded scheduler, poll
 * runner) and the stream runtime running, and faults all along:
 * - the poll simulators answer 5xx, 429, time out, send HTML or cut answers short, at random;
 * - Geotab goes down for a while, and its sessions expire every two minutes;
 * - Tesla's websocket upgrades are refused or hang now and then, and Traccar's device list fails now and then;
 * - stream sockets are dropped every 45 s, and once all of Tesla's go half-open;
 * - core is unreachable for the stream runtime for a while (a proxy between them goes down).
 *
 * Then the faults stop and the clock freezes; the poll backoffs are cleared (as if waited out) and every poll
 * connection polls cleanly once; the stream runtime reconnects and delivers what it holds. The check: every reading
 * a simulator served for a bound device is stored once with its value ("lost" must be 0), nothing is stored that
 * was never served, each snapshot row is the newest history row, and no stored value is out of bounds. Exit code 1
 * otherwise.
 *
 * The simulated clock starts far enough in the past that it never runs ahead of the wall clock: ingest rejects a
 * reading observed more than 120 s in the future. The stream runtime does not coalesce here (a coalesced reading
 * is replaced by a newer one on purpose and would count as lost).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config.ts';
import { startCore, type CoreRuntime } from '../src/core/runtime.ts';
import { listWorkspaces, putTelematicsPolicy } from '../src/core/registry/workspaces.ts';
import { seedDemo } from '../src/demo/seed.ts';
import { demoFleetSizes, startDemoSimulators, type DemoProvider, type DemoSimulators } from '../src/demo/simulators.ts';
import { createLogger } from '../src/logging.ts';
import { createGeotabPollAdapter } from '../src/providers/geotab/adapter.ts';
import type { GeotabSimulator } from '../src/sim/geotab/simulator.ts';
import type { PollAdapter } from '../src/providers/poll-adapter.ts';
import { streamAdapters } from '../src/providers/registry.ts';
import { createSamsaraPollAdapter } from '../src/providers/samsara/adapter.ts';
import type { RunningTessieSimulator } from '../src/sim/tessie/simulator.ts';
import type { RunningTraccarSimulator } from '../src/sim/traccar/simulator.ts';
import { faultKinds, type FaultRates } from '../src/sim/faults.ts';
import { servedKey } from '../src/sim/ground-truth.ts';
import { defaultStreamTimings, startStreamRuntime, type StreamRuntime } from '../src/stream/runtime.ts';
import { withSearchPath } from '../test/support/database.ts';
import { checkStoreInvariants, invariantViolations } from '../test/support/store-invariants.ts';
import { sameServedValue, storedReadings } from '../test/support/stored-readings.ts';
import { startSwitchableProxy, type SwitchableProxy } from '../test/support/switchable-proxy.ts';
import { withFreshSchema } from './support.ts';

const minutes = Number(process.env.FLEETWIRE_SOAK_MINUTES ?? 10);
const speed = Number(process.env.FLEETWIRE_SOAK_SPEED ?? 10);
const databaseUrl = process.env.FLEETWIRE_SOAK_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const durationMs = minutes * 60_000;
const pollIntervalSeconds = 10;

const pollFaultRates: FaultRates = { server_error: 0.05, rate_limit: 0.05, timeout: 0.03, malformed: 0.03, truncated: 0.03 };
const traccarRestFaultRates: FaultRates = { server_error: 0.05, malformed: 0.02, truncated: 0.02 };
const teslaUpgradeFaultRates: FaultRates = { server_error: 0.04, rate_limit: 0.02, timeout: 0.01, malformed: 0.01, truncated: 0.01 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const int = (n: number) => n.toLocaleString('en-US');
const say = (line: string) => process.stdout.write(`${line}\n`);

/** Starts behind the wall clock by the whole run at `speed` plus a margin, so it never gets ahead of it. */
function soakClock(): { now: () => number; startMs: number; freeze(): void } {
  const t0 = Date.now();
  const startMs = t0 - (durationMs * speed + 20 * 60_000);
  let frozenAt: number | undefined;
  const running = () => startMs + (Date.now() - t0) * speed;
  return { now: () => frozenAt ?? running(), startMs, freeze: () => void (frozenAt ??= running()) };
}

interface Simulators extends DemoSimulators {
  geotab: GeotabSimulator;
  traccar: RunningTraccarSimulator;
  tesla: RunningTessieSimulator;
}

/** The demo's simulators (src/demo/simulators.ts: its seeds, fleet sizes, names and accounts), on the soak's clock. */
async function startSimulators(clock: { now: () => number }): Promise<Simulators> {
  const demo = await startDemoSimulators({
    host: '127.0.0.1',
    ports: { samsara: 0, geotab: 0, traccar: 0, 'tessie': 0 },
    timeScale: 5,
    vehicles: demoFleetSizes,
    now: clock.now,
    pollTimeoutMs: 5_000,
  });
  return { ...demo, geotab: demo.running.geotab, traccar: demo.running.traccar, tesla: demo.running['tessie'] };
}

/** The timed faults of the run; `stop` ends all of them at once. */
function scheduleTrouble(sims: Simulators, proxy: SwitchableProxy, log: (line: string) => void): { stop(): Promise<void>; coreOutages: number } {
  const timers: NodeJS.Timeout[] = [];
  const at = (ms: number, action: () => void) => timers.push(setTimeout(action, ms));
  const every = (ms: number, action: () => void) => timers.push(setInterval(action, ms));
  const state = { coreOutages: 0, proxyDown: false };

  sims.faults.samsara.setRates(pollFaultRates);
  sims.faults.geotab.setRates(pollFaultRates);
  sims.faults.traccar.setRates(traccarRestFaultRates);
  sims.faults['tessie'].setRates(teslaUpgradeFaultRates);
  let drops = 0;
  every(45_000, () => {
    drops += 1;
    if (drops % 2 === 1) sims.traccar.dropSockets();
    else sims.tesla.dropSockets();
  });
  every(120_000, () => sims.geotab.expireSessions());
  const geotabOutageMs = Math.min(60_000, durationMs * 0.1);
  at(durationMs * 0.25, () => {
    log(`fault: Geotab down for ${Math.round(geotabOutageMs / 1000)} s`);
    sims.faults.geotab.startOutage('server_error');
    at(geotabOutageMs, () => sims.faults.geotab.endOutage());
  });
  const coreOutageMs = Math.min(20_000, durationMs * 0.08);
  at(durationMs * 0.45, () => {
    log(`fault: core unreachable for the stream runtime for ${Math.round(coreOutageMs / 1000)} s`);
    state.coreOutages += 1;
    state.proxyDown = true;
    void proxy.down();
    at(coreOutageMs, () => {
      state.proxyDown = false;
      void proxy.up();
    });
  });
  at(durationMs * 0.6, () => {
    log('fault: every Tesla socket goes half-open');
    sims.tesla.goHalfOpen();
  });
  return {
    get coreOutages() {
      return state.coreOutages;
    },
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      for (const injector of Object.values(sims.faults)) {
        injector.setRates({});
        injector.endOutage();
      }
      if (state.proxyDown) {
        state.proxyDown = false;
        await proxy.up();
      }
    },
  };
}

async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

function streamTotals(stream: StreamRuntime) {
  let readingsIn = 0;
  let reconnects = 0;
  let connected = 0;
  for (const connection of stream.connections.values()) {
    readingsIn += connection.counters.readingsIn;
    const status = stream.status(connection.id)!;
    reconnects += status.reconnects;
    if (status.connected) connected += 1;
  }
  const t = stream.pipeline.totals;
  return { readingsIn, reconnects, connected, delivered: t.delivered, dropped: t.dropped, buffered: t.buffered + stream.coalescer.held };
}

async function run({ schema, jobSchema }: { schema: string; jobSchema: string }): Promise<boolean> {
  const started = Date.now();
  const elapsed = () => {
    const s = Math.round((Date.now() - started) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2)}:${String(s % 60).padStart(2, '0')}`;
  };
  const log = (line: string) => say(`[${elapsed()}] ${line}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-soak-'));
  const coreLog = { warnings: 0, errors: [] as string[] };
  const logger = createLogger({
    level: 'warn',
    name: 'soak',
    destination: new Writable({
      write(chunk, _encoding, done) {
        const line = String(chunk);
        if (/"level":"(error|fatal)"/.test(line)) coreLog.errors.push(line.slice(0, 400));
        else coreLog.warnings += 1;
        done();
      },
    }),
  });

  const clock = soakClock();
  const sims = await startSimulators(clock);
  let core: CoreRuntime | undefined;
  let proxy: SwitchableProxy | undefined;
  let stream: StreamRuntime | undefined;
  let trouble: ReturnType<typeof scheduleTrouble> | undefined;
  try {
    const serviceToken = `fws_soak_${randomBytes(16).toString('hex')}`;
    const secretKey = randomBytes(32);
    const config = loadConfig({
      DATABASE_URL: withSearchPath(databaseUrl, schema),
      FLEETWIRE_JOB_SCHEMA: jobSchema,
      FLEETWIRE_DATA_DIR: dataDir,
      FLEETWIRE_PORT: '0',
      FLEETWIRE_SCHEDULER: 'embedded',
      FLEETWIRE_TICK_SECONDS: '2',
      FLEETWIRE_SERVICE_TOKEN: serviceToken,
      FLEETWIRE_ADMIN_TOKEN: `fwa_soak_${randomBytes(16).toString('hex')}`,
      FLEETWIRE_SECRET_KEY: secretKey.toString('hex'),
      FLEETWIRE_LOG_LEVEL: 'warn',
    });
    // Client timeouts shorter than the simulators' 5 s holds, so a `timeout` fault is a timeout; Geotab's first poll
    // looks back from the simulated clock.
    const adapters = new Map<string, PollAdapter>([
      ['samsara', createSamsaraPollAdapter({ timeoutMs: 3_000 }) as unknown as PollAdapter],
      ['geotab', createGeotabPollAdapter({ timeoutMs: 3_000, now: clock.now }) as unknown as PollAdapter],
    ]);
    core = await startCore(config, logger, { adapters });
    const workspaces = await seedDemo(core.db, secretKey, sims, dataDir);
    // The demo polls every 15 s: at 10x, 150 simulated seconds apart. The soak polls as often as a policy allows
    // (10 s), for more requests, more faults and more pages re-read.
    for (const workspace of await listWorkspaces(core.db)) {
      await putTelematicsPolicy(core.db, workspace.id, { ...workspace.policy, pollIntervalSeconds });
    }
    const port = Number(new URL(core.url).port);
    proxy = await startSwitchableProxy(port);
    stream = startStreamRuntime({
      ...defaultStreamTimings,
      coreUrl: proxy.url,
      serviceToken,
      logger,
      adapters: streamAdapters,
      holder: 'soak-stream',
      refreshMs: 5_000,
      coalesceMs: 0,
    });
    const db = core.db;
    log(`soak: ${minutes} min at ${speed}x (${Math.round((minutes * speed) / 6) / 10} simulated h) on ${new URL(databaseUrl).host}, schema ${schema}; workspaces ${workspaces.map((w) => w.name).join(', ')}`);
    trouble = scheduleTrouble(sims, proxy, log);

    // The run, with a progress line now and then.
    const progressEvery = Math.min(60_000, Math.max(15_000, durationMs / 10));
    while (Date.now() - started < durationMs) {
      await sleep(Math.min(progressEvery, durationMs - (Date.now() - started)));
      const { rows } = await db.query<{ history: number; ok: number; failed: number }>(
        `SELECT (SELECT count(*)::int FROM signal_history) AS history,
                (SELECT count(*)::int FROM poll_runs WHERE status = 'succeeded') AS ok,
                (SELECT count(*)::int FROM poll_runs WHERE status = 'failed') AS failed`,
      );
      const served = Object.values(sims.running).reduce((n, s) => n + s.groundTruth.unique().size, 0);
      const s = streamTotals(stream);
      log(`served ${int(served)}  stored ${int(rows[0]!.history)}  polls ok ${rows[0]!.ok} failed ${rows[0]!.failed}  stream in ${int(s.readingsIn)} delivered ${int(s.delivered)} buffered ${int(s.buffered)} reconnects ${s.reconnects}`);
    }

    // The end: no more faults, no more new data; polls and the stream runtime catch up.
    await trouble.stop();
    clock.freeze();
    log(`faults stopped, clock frozen at ${new Date(clock.now()).toISOString()}; catching up`);
    const { rows: nowRows } = await db.query<{ now: Date }>('SELECT now() AS now');
    const frozenAt = nowRows[0]!.now;
    const { rows: pollConnections } = await db.query<{ id: string }>(`SELECT id FROM provider_connections WHERE transport = 'poll'`);
    await until(
      'a clean poll of every poll connection',
      async () => {
        // Backoffs from the fault phase are taken as waited out, here and for any run still failing from it.
        await db.query(
          `UPDATE connection_poll_states s SET next_poll_at = NULL, rate_limited_until = NULL
            WHERE NOT EXISTS (SELECT 1 FROM poll_runs r WHERE r.connection_id = s.connection_id AND r.status = 'succeeded' AND r.started_at > $1)`,
          [frozenAt],
        );
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(DISTINCT connection_id)::int AS n FROM poll_runs WHERE status = 'succeeded' AND started_at > $1 AND connection_id = ANY($2::uuid[])`,
          [frozenAt, pollConnections.map((c) => c.id)],
        );
        return rows[0]!.n === pollConnections.length;
      },
      180_000,
      1000,
    );
    let lastIn = -1;
    let stableSince = Date.now();
    await until(
      'the stream runtime to reconnect and take in everything sent',
      () => {
        const s = streamTotals(stream!);
        if (s.readingsIn !== lastIn) {
          lastIn = s.readingsIn;
          stableSince = Date.now();
        }
        return s.connected === stream!.connections.size && stream!.connections.size === 2 && Date.now() - stableSince > 5_000;
      },
      180_000,
    );
    await sims.traccar.stop();
    await sims.tesla.stop();
    await until('the stream runtime to deliver everything', () => streamTotals(stream!).buffered === 0, 60_000);
    log('caught up; checking');

    // The books.
    const { rows: bound } = await db.query<{ id: string; workspace_id: string; provider: DemoProvider; external_ids: string[] }>(
      `SELECT c.id, c.workspace_id, c.provider, array_agg(d.external_id) AS external_ids
         FROM provider_connections c JOIN device_bindings d ON d.workspace_id = c.workspace_id AND d.connection_id = c.id
        GROUP BY c.id, c.workspace_id, c.provider ORDER BY c.provider`,
    );
    let lostTotal = 0;
    let extraTotal = 0;
    let wrongTotal = 0;
    let servedTotal = 0;
    let servedAll = 0;
    const lines: string[] = [];
    for (const connection of bound) {
      const sim = sims.running[connection.provider];
      const ids = new Set(connection.external_ids);
      const served = [...sim.groundTruth.unique()].filter(([, r]) => ids.has(r.externalDeviceId));
      const stored = new Map((await storedReadings(db, connection.workspace_id, connection.id)).map((r) => [servedKey(r), r.value]));
      const lost = served.filter(([key]) => !stored.has(key));
      const servedKeys = new Set(served.map(([key]) => key));
      const extra = [...stored.keys()].filter((key) => !servedKeys.has(key));
      const wrong = served.filter(([key, r]) => stored.has(key) && !sameServedValue(stored.get(key), r.value));
      lostTotal += lost.length;
      extraTotal += extra.length;
      wrongTotal += wrong.length;
      servedTotal += served.length;
      const repeats = sim.groundTruth.all().filter((r) => ids.has(r.externalDeviceId)).length;
      servedAll += repeats;
      lines.push(
        `  ${connection.provider.padEnd(16)} served ${int(served.length).padStart(9)} (with repeats ${int(repeats).padStart(9)})  stored ${int(stored.size).padStart(9)}  lost ${lost.length}  never served ${extra.length}  wrong value ${wrong.length}`,
      );
      for (const [key] of lost.slice(0, 3)) lines.push(`    lost: ${key}`);
      for (const key of extra.slice(0, 3)) lines.push(`    never served: ${key}`);
    }

    const { rows: polls } = await db.query<{ accepted: number; late: number; duplicate: number; rejected: number; ok: number; failed: number }>(
      `SELECT COALESCE(sum(accepted), 0)::int AS accepted, COALESCE(sum(late), 0)::int AS late, COALESCE(sum(duplicate), 0)::int AS duplicate,
              COALESCE(sum(rejected), 0)::int AS rejected, count(*) FILTER (WHERE status = 'succeeded')::int AS ok, count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM poll_runs`,
    );
    const { rows: failedBy } = await db.query<{ provider: string; error_class: string; n: number }>(
      `SELECT provider, error_class, count(*)::int AS n FROM poll_runs WHERE status = 'failed' GROUP BY provider, error_class ORDER BY provider, error_class`,
    );
    const { rows: unfinished } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM poll_runs WHERE status = 'running'`);
    const { rows: reasons } = await db.query<{ reason: string; n: number }>('SELECT reason, sum(count)::int AS n FROM ingest_rejections GROUP BY reason ORDER BY reason');
    const answered = stream.pipeline.answered;
    const p = polls[0]!;
    const s = streamTotals(stream);
    const invariants = await checkStoreInvariants(db);
    const violations = invariantViolations(invariants);

    say('');
    say(`soak result: ${minutes} min wall, ${Math.round(minutes * speed)} simulated min, PostgreSQL`);
    say(`readings served (ground truth, unique, bound devices)  ${int(servedTotal)}  (served with repeats ${int(servedAll)})`);
    for (const line of lines) say(line);
    say(`readings accepted   ${int(p.accepted + (answered.accepted ?? 0))}  (poll ${int(p.accepted)}, stream ${int(answered.accepted ?? 0)})`);
    say(`readings late       ${int(p.late + (answered.late ?? 0))}  (poll ${int(p.late)}, stream ${int(answered.late ?? 0)})`);
    say(`readings duplicate  ${int(p.duplicate + (answered.duplicate ?? 0))}  (poll ${int(p.duplicate)}, stream ${int(answered.duplicate ?? 0)})`);
    say(`readings rejected   ${int(p.rejected + (answered.rejected ?? 0))}  (poll ${int(p.rejected)}, stream ${int(answered.rejected ?? 0)})`);
    say(`rejections stored by reason  ${reasons.map((r) => `${r.reason} ${int(r.n)}`).join(', ') || 'none'}`);
    // A batch core stored whose answer was lost (the proxy cut it) is sent again and answered duplicate: stored
    // once, counted by nobody as accepted. That is the difference between history and accepted + late.
    const unacknowledged = invariants.historyRows - (p.accepted + p.late + (answered.accepted ?? 0) + (answered.late ?? 0));
    say(`history rows ${int(invariants.historyRows)} (of which stored with the answer lost, re-sent and answered duplicate: ${int(unacknowledged)}), snapshot rows ${int(invariants.snapshotRows)}`);
    say(`LOST (served for a bound device, not stored)  ${lostTotal}`);
    say(`stored but never served ${extraTotal}, stored with another value ${wrongTotal}`);
    say(`invariants: ${violations.length === 0 ? 'snapshot = newest history row, every value within bounds' : violations.join('; ')}`);
    say(`poll runs ok ${p.ok}, failed ${p.failed} (${failedBy.map((r) => `${r.provider} ${r.error_class} ${r.n}`).join(', ')}), left running ${unfinished[0]!.n}`);
    say(`stream: readings in ${int(s.readingsIn)}, delivered ${int(s.delivered)}, dropped ${s.dropped}, reconnects ${s.reconnects}, core outages ${trouble.coreOutages}`);
    const injected = (name: DemoProvider) => faultKinds.filter((k) => sims.faults[name].injected[k] > 0).map((k) => `${k} ${sims.faults[name].injected[k]}`).join(' ');
    say(`faults injected: ${(Object.keys(sims.faults) as DemoProvider[]).map((name) => `${name} [${injected(name)}]`).join(', ')}`);
    say(`core log: ${coreLog.warnings} warnings, ${coreLog.errors.length} errors${coreLog.errors.length > 0 ? `; last: ${coreLog.errors[coreLog.errors.length - 1]}` : ''}`);
    const ok = lostTotal === 0 && extraTotal === 0 && wrongTotal === 0 && violations.length === 0 && s.dropped === 0;
    say(ok ? 'PASS: nothing lost, nothing duplicated' : 'FAIL');
    return ok;
  } finally {
    await trouble?.stop();
    await stream?.stop();
    await proxy?.close();
    await core?.stop();
    await sims.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!(minutes > 0) || !(speed >= 1)) throw new Error('FLEETWIRE_SOAK_MINUTES must be > 0 and FLEETWIRE_SOAK_SPEED >= 1');
  const ok = await withFreshSchema(databaseUrl, 'fw_soak', run);
  process.exitCode = ok ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
