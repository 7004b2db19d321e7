/**
 * A rollback from core that loses nothing (docs/OPERATIONS.md, "Migrating a workspace", step 4), under load: a
 * workspace in core with dozens of Samsara vehicles in fast simulated time, core's scheduled polling going through
 * the real scheduler, job queue and poll runner, and the demo's legacy poller reading the same account the whole time
 * (refused while core owns the workspace, its cursors moving on regardless). The rollback to legacy lands while a
 * poll run is in flight; more load follows. The simulator's ground truth (one token per poller, one fleet) says what
 * each side was served, and its fleet model what was produced: history holds all of it once, with the right value
 * and source, and nothing else. The readings only the legacy poller had read before the rollback are there because
 * core's closing poll fetched them from its committed cursors.
 *
 * The simulator, the legacy poller and the scheduler's events share a clock the test moves (30 minutes behind the
 * wall, so no reading is ever ahead of core's clock); nothing is compared with the time of day.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processScheduledEvent } from '../../src/core/polling/scheduled-events.ts';
import { createTicker } from '../../src/core/polling/ticker.ts';
import { createWorkspace, putCutover } from '../../src/core/registry/workspaces.ts';
import { startLegacyPoller, type LegacyPoller } from '../../src/demo/legacy-poller.ts';
import { createLogger } from '../../src/logging.ts';
import type { PollAdapter, PollPage } from '../../src/providers/poll-adapter.ts';
import { createSamsaraPollAdapter } from '../../src/providers/samsara/adapter.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { servedKey, type ServedReading } from '../../src/sim/ground-truth.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { connectSimulator, type SimulatedConnection } from '../support/simulated.ts';
import { sameServedValue } from '../support/stored-readings.ts';
import { until } from '../support/stream.ts';

/** What the legacy poller's own mapping reads; core's reads heading, speed, ignition and battery temperature besides. */
const legacySignals = new Set(['soc_pct', 'odometer_km', 'location', 'charging_state']);
const tokens = { core: 'rollback-core-samsara-token', legacy: 'rollback-legacy-samsara-token', shadow: 'closing-shadow-samsara-token' } as const;

let clock = Date.now() - 30 * 60_000;
const now = () => clock;
const fleet = new FleetModel({ seed: 4242, vehicles: 48, startMs: clock, timeScale: 20 });
const small = new FleetModel({ seed: 4343, vehicles: 3, startMs: clock, timeScale: 20 });
const logger = createLogger({ level: 'warn', name: 'rollback-load-test', destination: new Writable({ write: (_chunk, _e, done) => done() }) });

/**
 * Samsara's adapter, watched: the ground truth served to core when each poll began, and a hook that runs once the
 * poll has fetched its last page and before it hands that page over (so the run is in flight, and commits the page
 * after whatever the hook did).
 */
const watched = {
  polls: [] as { coreServedBefore: number }[],
  beforeLastPage: undefined as (() => Promise<void>) | undefined,
};
function watchedAdapter(inner: PollAdapter): PollAdapter {
  return {
    contract: inner.contract,
    async *poll(context) {
      watched.polls.push({ coreServedBefore: samsara.groundTruth.all(tokens.core).length });
      const pages = inner.poll(context)[Symbol.asyncIterator]();
      let current: IteratorResult<PollPage> = await pages.next();
      while (!current.done) {
        const next = await pages.next();
        const hook = watched.beforeLastPage;
        if (next.done && hook) {
          watched.beforeLastPage = undefined;
          await hook();
        }
        yield current.value;
        current = next;
      }
    },
  };
}

let core: TestCore;
let samsara: RunningSimulator;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  samsara = await startSamsaraSimulator({
    accounts: [
      // Two tokens of one organization: one fleet, and a ground truth of its own for each poller.
      { credentials: { apiToken: tokens.core }, fleet },
      { credentials: { apiToken: tokens.legacy }, fleet },
      { credentials: { apiToken: tokens.shadow }, fleet: small },
    ],
    now,
    pageSize: 50,
  });
  const adapter = watchedAdapter(createSamsaraPollAdapter({ timeoutMs: 5000, now }) as unknown as PollAdapter);
  core = await startTestCore({ polling: { adapters: new Map([['samsara', adapter]]), work: true } });
});
afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await core?.close();
  await samsara?.stop();
});

interface PollRun {
  id: number;
  status: string;
  accepted: number;
  late: number;
  notes: string[];
}
const closingNote = /^the closing poll of a rollback from core/;
const isClosing = (run: PollRun) => run.notes.some((note) => closingNote.test(note));

async function pollRuns(workspaceId: string): Promise<PollRun[]> {
  const { rows } = await core.db.query<PollRun>('SELECT id, status, accepted, late, notes FROM poll_runs WHERE workspace_id = $1 ORDER BY id', [workspaceId]);
  return rows.map((r) => ({ ...r, id: Number(r.id), notes: r.notes ?? [] }));
}

/** Waits until `n` more of the workspace's poll runs have finished: with n >= 2, one started after the call. */
async function finishedRuns(workspaceId: string, n: number): Promise<void> {
  const done = async () => (await pollRuns(workspaceId)).filter((r) => r.status !== 'running').length;
  const target = (await done()) + n;
  await until(`${n} more poll runs`, async () => (await done()) >= target || undefined, 20_000);
}

/** Waits for `n` more polls of the legacy poller to finish: with n >= 2, one began after the call. */
async function legacyPolls(poller: LegacyPoller, n: number): Promise<void> {
  const target = poller.stats.polls + n;
  await until(`${n} more legacy polls`, () => poller.stats.polls >= target || undefined);
}

interface StoredRow {
  key: string;
  signal: string;
  observedAtMs: number;
  value: unknown;
  source: string;
}

/** The connection's history rows, keyed like ground truth, with the source each came by. */
async function history(workspaceId: string, connection: SimulatedConnection): Promise<StoredRow[]> {
  const { rows } = await core.db.query<{ external_id: string; signal: string; observed_ms: number; value: unknown; source: string }>(
    `SELECT d.external_id, h.signal, (extract(epoch FROM h.observed_at) * 1000)::float8 AS observed_ms, h.value, h.source
       FROM signal_history h
       JOIN device_bindings d ON d.workspace_id = h.workspace_id AND d.vehicle_id = h.vehicle_id AND d.connection_id = h.connection_id
      WHERE h.workspace_id = $1 AND h.connection_id = $2`,
    [workspaceId, connection.connectionId],
  );
  return rows.map((r) => {
    const observedAtMs = Math.round(r.observed_ms);
    return { key: servedKey({ externalDeviceId: r.external_id, signal: r.signal as ServedReading['signal'], observedAtMs }), signal: r.signal, observedAtMs, value: r.value, source: r.source };
  });
}

/** One entry per reading of `records` (the first serving of each), of the signals kept when `signals` is given. */
function unique(records: readonly ServedReading[], signals?: ReadonlySet<string>): Map<string, ServedReading> {
  const map = new Map<string, ServedReading>();
  for (const r of records) if ((!signals || signals.has(r.signal)) && !map.has(servedKey(r))) map.set(servedKey(r), r);
  return map;
}

const first = <T>(items: readonly T[]) => items.slice(0, 5);

/** A workspace with one Samsara connection to the simulator, under `apiToken`, with `model`'s vehicles bound. */
async function samsaraWorkspace(name: string, apiToken: string, model: { vehicles: readonly { samsaraId: string }[] }) {
  const workspace = await createWorkspace(core.db, { name });
  const connection = await connectSimulator(core.db, core.secretKey, workspace.id, {
    provider: 'samsara',
    baseUrl: samsara.url,
    credentials: { apiToken },
    externalIds: model.vehicles.map((v) => v.samsaraId),
  });
  return { workspaceId: workspace.id, connection };
}

describe('a rollback from core', () => {
  it('rollback under load loses nothing (history compared with both pollers’ ground truth)', { timeout: 60_000 }, async () => {
    const { workspaceId, connection } = await samsaraWorkspace('Rollback depot', tokens.core, fleet);
    // The scheduler, firing at the workspace every tick: each event goes through the due rules and the job queue.
    const ticker = createTicker({
      intervalMs: 200,
      clock: now,
      onTick: async (event) => {
        await processScheduledEvent(core.db, core.jobs, { ...event, detail: { workspaceId } }, now());
      },
      onError: () => undefined,
    });
    ticker.start();
    stops.push(() => ticker.stop());
    // Core's first poll reads the latest values and starts its feeds; what the fleet logs from here on is the load.
    await finishedRuns(workspaceId, 1);
    const startSeq = fleet.endSeq;
    const legacy = startLegacyPoller({
      coreUrl: core.url,
      serviceToken: core.serviceToken,
      workspaceId,
      connectionId: connection.connectionId,
      samsaraUrl: samsara.url,
      apiToken: tokens.legacy,
      intervalMs: 50,
      logger,
      now,
    });
    stops.push(() => legacy.stop());

    // Load while core owns the workspace: core's runs commit, the legacy poller's posts are refused.
    for (let step = 0; step < 6; step += 1) {
      clock += 30_000;
      await finishedRuns(workspaceId, 2);
      await legacyPolls(legacy, 2);
    }
    expect(legacy.stats.updatesRejected).toBeGreaterThan(0);

    // The rollback, while a run is in flight: it has fetched its last page, and commits it after the rollback. Before
    // it, time passes and the legacy poller reads (and is refused) what core's run did not fetch: the gap.
    const rollback: { legacyServed?: number; status?: number } = {};
    const rolledBack = new Promise<void>((resolve) => {
      watched.beforeLastPage = async () => {
        try {
          clock += 20_000;
          await legacyPolls(legacy, 2);
          rollback.legacyServed = samsara.groundTruth.all(tokens.legacy).length;
          rollback.status = (await core.http.admin('PUT', `/v1/workspaces/${workspaceId}/cutover`, { mode: 'legacy', reason: 'rollback under load' })).status;
        } finally {
          resolve();
        }
      };
    });
    clock += 15_000;
    await rolledBack;
    expect(rollback.status).toBe(200);
    const refusedBefore = legacy.stats.updatesRejected;

    // More load, the legacy poller's now; core's closing poll runs once, after the run in flight has committed.
    for (let step = 0; step < 6; step += 1) {
      clock += 30_000;
      await legacyPolls(legacy, 2);
    }
    await until('the closing poll', async () => (await pollRuns(workspaceId)).some((r) => isClosing(r) && r.status !== 'running') || undefined, 20_000);
    for (let step = 0; step < 3; step += 1) {
      clock += 30_000;
      await legacyPolls(legacy, 2);
    }
    // Stop: the clock stands still, the legacy poller reads up to it, then everything stops.
    await legacyPolls(legacy, 2);
    await legacy.stop();
    await ticker.stop();
    await until('no poll run going', async () => (await pollRuns(workspaceId)).every((r) => r.status !== 'running') || undefined);
    const endSeq = fleet.endSeq;

    // The runs: the run in flight at the rollback and the closing poll after it, which is core's last; none failed.
    const runs = await pollRuns(workspaceId);
    expect(runs.filter((r) => r.status !== 'succeeded')).toEqual([]);
    const closing = runs.filter(isClosing);
    expect(closing).toHaveLength(1);
    expect(runs.at(-1)).toEqual(closing[0]);
    expect(closing[0]!.accepted + closing[0]!.late).toBeGreaterThan(0);
    expect(legacy.stats.updatesRejected).toBe(refusedBefore);
    // Settled just after the closing run's outcome is recorded.
    const settled = async () =>
      (await core.db.query<{ owed: boolean }>('SELECT closing_poll_generation IS NOT NULL AS owed FROM cutover_states WHERE workspace_id = $1', [workspaceId])).rows[0]!.owed === false;
    await until('the closing poll to be settled', async () => (await settled()) || undefined, 20_000);

    const stored = await history(workspaceId, connection);
    const byKey = new Map(stored.map((r) => [r.key, r]));
    expect(stored.length, 'one history row per (vehicle, signal, observed time)').toBe(byKey.size);
    const toCore = unique(samsara.groundTruth.all(tokens.core));
    const legacyServings = samsara.groundTruth.all(tokens.legacy);
    const toLegacy = unique(legacyServings, legacySignals);

    // Everything served to core's runs (before the rollback, the run in flight, the closing poll) is in history.
    expect(first([...toCore.keys()].filter((key) => !byKey.has(key))), 'served to core but not stored').toEqual([]);
    // Everything served to the legacy poller after the rollback is in history.
    const afterRollback = unique(legacyServings.slice(rollback.legacyServed), legacySignals);
    expect(afterRollback.size).toBeGreaterThan(0);
    expect(first([...afterRollback.keys()].filter((key) => !byKey.has(key))), 'served to the legacy poller after the rollback but not stored').toEqual([]);
    // Nothing in history was not served, and each row has the value its source was served.
    const servedTo = { poll: toCore, legacy_poll: toLegacy } as Record<string, Map<string, ServedReading>>;
    expect(first(stored.filter((r) => !servedTo[r.source]?.has(r.key)).map((r) => `${r.source} ${r.key}`)), 'stored but never served to its source').toEqual([]);
    const wrong = stored.filter((r) => !sameServedValue(r.value, servedTo[r.source]!.get(r.key)!.value));
    expect(first(wrong.map((r) => [r.key, r.source, r.value, servedTo[r.source]!.get(r.key)!.value])), 'values differ from what was served').toEqual([]);

    // The gap: readings only the legacy poller had been served when the rollback came, and core not before its
    // closing poll. They were refused then; the closing poll stored them.
    const closingPoll = watched.polls.at(-1)!;
    const coreBeforeClosing = unique(samsara.groundTruth.all(tokens.core).slice(0, closingPoll.coreServedBefore));
    const gap = [...unique(legacyServings.slice(0, rollback.legacyServed), legacySignals).keys()].filter((key) => !coreBeforeClosing.has(key));
    expect(gap.length).toBeGreaterThan(0);
    expect(first(gap.filter((key) => byKey.get(key)?.source !== 'poll')), 'the gap, stored by the closing poll').toEqual([]);

    // No hole: every reading served to either side is in history, and so is every reading the fleet produced from
    // the start to the end, of each vehicle and signal both pollers read.
    expect(first([...toLegacy.keys()].filter((key) => !byKey.has(key))), 'served to the legacy poller but not stored').toEqual([]);
    const externalIds = fleet.vehicles.map((v) => v.samsaraId);
    const produced = fleet
      .samplesFrom(startSeq, endSeq - startSeq)
      .filter((s) => legacySignals.has(s.signal))
      .map((s) => servedKey({ externalDeviceId: externalIds[s.vehicle]!, signal: s.signal, observedAtMs: s.observedAtMs }));
    expect(produced.length).toBeGreaterThan(1000);
    expect(first(produced.filter((key) => !byKey.has(key))), 'produced but not in history').toEqual([]);
  });
});

describe('the closing poll', () => {
  it('is due at once, runs once as owned readings in shadow too, and is owed no more once the cutover changed again', async () => {
    const { workspaceId, connection } = await samsaraWorkspace('Closing depot', tokens.shadow, small);
    const broadcast = async () => {
      const time = new Date(clock).toISOString().replace(/\.\d{3}Z$/, 'Z');
      return (await processScheduledEvent(core.db, core.jobs, { version: '0', id: randomUUID(), 'detail-type': 'Scheduled Event', source: 'fleetwire.test', time, detail: {} }, now())).workspacesDue;
    };
    const jobRun = async (done: (runs: PollRun[]) => boolean) => until('the job to run', async () => done(await pollRuns(workspaceId)) || undefined, 20_000);
    const coreHistory = async () => (await history(workspaceId, connection)).filter((r) => r.source === 'poll').length;
    const coreShadowed = async () =>
      (await core.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM shadow_readings WHERE workspace_id = $1 AND side = 'core'`, [workspaceId])).rows[0]!.n;
    const owed = async () =>
      (await core.db.query<{ g: string | null }>('SELECT closing_poll_generation AS g FROM cutover_states WHERE workspace_id = $1', [workspaceId])).rows[0]!.g;

    // Core owns it and has polled it: a broadcast makes it due, and its job commits the feed cursors.
    expect(await broadcast()).toBe(1);
    await jobRun((runs) => runs.length === 1 && runs[0]!.status !== 'running');
    const owned = await coreHistory();
    expect(owned).toBeGreaterThan(0);

    // To shadow: the interval has not passed, but the closing poll is due at once; it stores what it reads as owned.
    clock += 60_000;
    await putCutover(core.db, workspaceId, 'shadow', { actor: 'test', reason: 'back to parity' });
    expect(await owed()).not.toBeNull();
    expect(await broadcast()).toBe(1);
    await jobRun((runs) => runs.length === 2 && runs[1]!.status !== 'running');
    const [, closingRun] = await pollRuns(workspaceId);
    expect(isClosing(closingRun!)).toBe(true);
    expect(closingRun!.accepted).toBeGreaterThan(0);
    expect(await coreHistory()).toBe(owned + closingRun!.accepted + closingRun!.late);
    expect(await coreShadowed()).toBe(0);
    // Settled once every connection had its closing run, just after the run's outcome is recorded.
    await until('the closing poll to be settled', async () => ((await owed()) === null ? true : undefined), 20_000);

    // Owed no more: the next broadcast waits for the interval, and the next poll is a shadow poll, for parity only.
    expect(await broadcast()).toBe(0);
    clock += 60_000;
    await core.runner.runWorkspace({ workspaceId, eventId: 'shadow-poll' });
    const afterShadow = await pollRuns(workspaceId);
    expect(afterShadow).toHaveLength(3);
    expect(isClosing(afterShadow[2]!)).toBe(false);
    expect(await coreShadowed()).toBeGreaterThan(0);
    expect(await coreHistory()).toBe(owned + closingRun!.accepted + closingRun!.late);

    // Core, then a rollback to legacy, then shadow before any closing poll: the closing poll of the rollback is not
    // owed any more (its generation has passed), and the next poll is a shadow poll.
    await putCutover(core.db, workspaceId, 'core', { actor: 'test', forced: true, reason: 'test' });
    await putCutover(core.db, workspaceId, 'legacy', { actor: 'test', reason: 'test' });
    expect(await owed()).not.toBeNull();
    await putCutover(core.db, workspaceId, 'shadow', { actor: 'test', reason: 'test' });
    expect(await owed()).toBeNull();
    clock += 60_000;
    await core.runner.runWorkspace({ workspaceId, eventId: 'fenced' });
    const fenced = await pollRuns(workspaceId);
    expect(fenced).toHaveLength(4);
    expect(isClosing(fenced[3]!)).toBe(false);
  });
});
