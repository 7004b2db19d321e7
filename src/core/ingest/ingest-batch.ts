/**
 * The ingest handler: the single acceptance point for canonical updates from every source (DESIGN §4). The
 * scheduled poll runner calls it in-process; the stream runtime and legacy pollers reach it through
 * `POST /internal/v1/ingest`. Steps:
 *
 *  1. shape: each update against the envelope schema (`malformed`);
 *  2. identity: workspace exists, telematics enabled, device bound to this connection and active; a device bound to
 *     nothing is discovered on its connection (`unknown_device`), or dropped and only counted if an operator ignores
 *     it (`device_ignored`, never stored);
 *  3. ownership: the workspace's cutover decides whether `poll` or `legacy_poll` owns it; `stream` always may, but
 *     a stream process may only send for the connections it holds a live lease on;
 *  4. each reading: catalogue (`unknown_signal`, `invalid_value`), clock (`future_timestamp`, `too_old`),
 *     counters against the snapshot (`implausible_value`);
 *  5. classify: `accepted`, `late`, `duplicate`;
 *  6. one transaction writes history, snapshot, rejections (folded by cause and hour), discovered devices, reading
 *     counts, sync marks and whatever the caller adds (a poll's feed cursor). If it fails nothing is written, and
 *     nothing of it shows in the results.
 *
 * Everything after the shape is decided inside the transaction, against rows it locks: the workspace's policy and
 * cutover (`FOR SHARE`, so a cutover waits for the batches that read the old mode, and the batches after it see
 * the new one), the stream lease, the vehicles. A retried attempt starts from scratch.
 */
import { checkSignalValue, nonDecreasingRule, signalNames, type SignalName } from '../../canonical/signals.ts';
import { parseTimestamp, updateEnvelopeSchema, type UpdateEnvelope } from '../../canonical/update.ts';
import { sqlErrorIs, type Database, type Sql } from '../db/database.ts';
import type { EventDraft } from '../events/catalogue.ts';
import { vehicleEvents, type AcceptedReading } from '../events/derive.ts';
import { writeEvents } from '../events/event-log.ts';
import { loadShadowPoints, recordParity, type ParityReading } from '../cutover/parity-store.ts';
import { dayStart, ensureHistoryPartitions, forgetHistoryPartitions, missingHistoryPartitions } from '../db/history-partitions.ts';
import { recordIngestOutcome } from '../metrics.ts';
import { unattributedWorkspace } from '../read/rejections.ts';
import { classifyReadings, snapshotKey, type Candidate, type SnapshotPoint } from './classify.ts';
import {
  futureAllowanceMs,
  type IngestCounts,
  type IngestOutcome,
  type ReadingResult,
  type RejectionReason,
  type UpdateResult,
} from './reasons.ts';
import { aggregateReadingCounts, aggregateRejections, aggregateSightings, type Sighting } from './rejection-aggregation.ts';
import { storableJson } from './storable-json.ts';
import {
  deviceKey,
  loadSnapshot,
  loadWorkspaceStates,
  lockBoundDevices,
  lockHeldLeases,
  writeChargingSessions,
  writeUnitOfWork,
  loadUnboundDevices,
  type BoundDevice,
  type DeviceKey,
  type UnboundDevice,
  type HistoryRow,
  type RejectionRow,
  type SyncMark,
  type WorkspaceState,
} from './store.ts';
import { UnsafeUpdate } from './unsafe-update.ts';

export interface IngestOptions {
  /** The server clock, in ms; injectable for tests of the time rules. */
  now?: number;
  /** More writes for the same unit of work (the poll runner advances its feed cursor here). */
  withinTransaction?: (tx: Sql) => Promise<void>;
  /**
   * The stream process that sent the batch. Its updates count only for connections it holds a live lease on; the
   * others are refused `not_lease_holder` (a process cut off from core whose connections were handed on).
   */
  streamHolder?: string;
  /**
   * The cutover generation the poll run that sends the batch runs under (its plan's, or for the closing poll of a
   * rollback the one before it). After a rollback (cutover core to legacy or shadow) the runs core started before it
   * and its one closing poll still commit their pages as owned readings, so nothing observed up to the rollback is
   * lost; in `legacy` the runs started after it are refused, in `shadow` they are kept for parity only.
   */
  pollCutoverGeneration?: number;
  /**
   * `false` writes no events: exists only so the outbox's cost can be measured against the same unit of work without
   * it (`npm run bench:events`). Every caller in production leaves it unset.
   */
  events?: false;
}

const dayMs = 86_400_000;
const counterSignals = signalNames.filter((signal) => nonDecreasingRule(signal) !== undefined);
/** Snapshot values a unit of work reads: the counters (never backwards) and what events are told from. */
const snapshotValueSignals = [...counterSignals, 'soc_pct', 'charging_state'];
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A reading that passed every check needing no stored state. */
interface PendingReading {
  readingIndex: number;
  signal: SignalName;
  value: unknown;
  valueJson: string;
  observedMs: number;
}

interface UpdateWork {
  index: number;
  raw: unknown;
  envelope?: UpdateEnvelope;
  receivedAt?: string;
  result: UpdateResult;
}

/**
 * `aboutConnection`: the cause is the connection's rather than the device's (it reports devices nobody bound here),
 * so the rejections of all such devices of a connection are counted on one row; discovered_devices lists them.
 */
type Problem = { reason: RejectionReason; detail: string; aboutConnection?: boolean };

function firstIssue(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return 'does not match the canonical update schema';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** The workspace to keep a shapeless update's rejection under: the one it names, if it names one at all. */
function rawWorkspaceId(raw: unknown): string {
  const id = (raw as { workspaceId?: unknown } | null)?.workspaceId;
  return typeof id === 'string' && uuidPattern.test(id) ? id.toLowerCase() : unattributedWorkspace;
}

function updateRejection(work: UpdateWork, problem: Problem): RejectionRow {
  const e = work.envelope;
  return {
    workspaceId: e?.workspaceId ?? rawWorkspaceId(work.raw),
    reason: problem.reason,
    detail: problem.detail,
    source: e?.source ?? null,
    provider: e?.provider ?? null,
    connectionId: e?.connectionId ?? null,
    externalDeviceId: e?.externalDeviceId ?? null,
    causeDeviceId: problem.aboutConnection ? null : (e?.externalDeviceId ?? null),
    vehicleId: null,
    signal: null,
    updateJson: storableJson(work.raw),
    readings: e?.readings.length ?? 0,
  };
}

/** A rejected reading is kept with its update's envelope and that one reading. */
function readingRejection(work: UpdateWork, readingIndex: number, problem: Problem, vehicleId: string | null): RejectionRow {
  const { readings, ...envelope } = work.envelope!;
  const reading = readings[readingIndex]!;
  return {
    workspaceId: envelope.workspaceId,
    reason: problem.reason,
    detail: problem.detail,
    source: envelope.source,
    provider: envelope.provider,
    connectionId: envelope.connectionId,
    externalDeviceId: envelope.externalDeviceId,
    causeDeviceId: envelope.externalDeviceId,
    vehicleId,
    signal: reading.signal,
    updateJson: storableJson({ ...envelope, readings: [reading] }),
    readings: 1,
  };
}

function markUpdateRejected(work: UpdateWork, reason: RejectionReason): void {
  work.result.status = 'rejected';
  work.result.reason = reason;
  work.result.readings = (work.envelope?.readings ?? []).map((r) => ({ signal: r.signal, status: 'rejected', reason }));
}

/** Step 1: the envelope's shape. Malformed updates are answered here and their rejection stored with the batch. */
function judgeShape(raw: unknown, index: number): { work: UpdateWork; rejection?: RejectionRow } {
  if (raw instanceof UnsafeUpdate) {
    const work: UpdateWork = { index, raw: raw.sanitized, result: { index, status: 'processed', readings: [] } };
    markUpdateRejected(work, 'malformed');
    return { work, rejection: updateRejection(work, { reason: 'malformed', detail: raw.detail }) };
  }
  const work: UpdateWork = { index, raw, result: { index, status: 'processed', readings: [] } };
  const parsed = updateEnvelopeSchema.safeParse(raw);
  if (!parsed.success) {
    markUpdateRejected(work, 'malformed');
    return { work, rejection: updateRejection(work, { reason: 'malformed', detail: firstIssue(parsed.error) }) };
  }
  // UUIDs are compared as text in the maps below: one spelling for each.
  work.envelope = { ...parsed.data, workspaceId: parsed.data.workspaceId.toLowerCase(), connectionId: parsed.data.connectionId.toLowerCase() };
  work.receivedAt = new Date(parseTimestamp(parsed.data.receivedAt)!).toISOString();
  work.result.readings = parsed.data.readings.map((r): ReadingResult => ({ signal: r.signal, status: 'accepted' }));
  return { work };
}

export async function ingestBatch(db: Database, rawUpdates: readonly unknown[], options: IngestOptions = {}): Promise<IngestOutcome> {
  const started = performance.now();
  const now = options.now ?? Date.now();
  const shaped = rawUpdates.map(judgeShape);
  const works = shaped.map((s) => s.work);
  const malformed = shaped.flatMap((s) => (s.rejection ? [s.rejection] : []));

  // The partitions its readings need exist before the transaction opens (normally made ahead by maintenance).
  // A missing one is made only for a day within the retention of the workspace named, so nobody can make us
  // create partitions for days whose readings would be refused anyway.
  const ensurePartitions = async () => {
    const byDay = new Map<number, Set<string>>();
    for (const w of works) {
      for (const r of w.envelope?.readings ?? []) {
        const ms = parseTimestamp(r.observedAt);
        if (ms === undefined || ms > now + futureAllowanceMs) continue;
        const day = dayStart(ms);
        byDay.set(day, (byDay.get(day) ?? new Set()).add(w.envelope!.workspaceId));
      }
    }
    const missing = await missingHistoryPartitions(db, byDay.keys());
    if (missing.length === 0) return;
    const states = await loadWorkspaceStates(db, [...new Set(missing.flatMap((day) => [...byDay.get(day)!]))], false);
    const wanted = missing.filter((day) =>
      [...byDay.get(day)!].some((ws) => {
        const retentionDays = states.get(ws)?.retentionDays;
        return retentionDays !== undefined && day + dayMs > now - retentionDays * dayMs;
      }),
    );
    await ensureHistoryPartitions(db, wanted);
  };
  await ensurePartitions();

  let decisions: Decisions;
  try {
    decisions = await withRetry(() => applyUnitOfWork(db, works, malformed, now, options));
  } catch (error) {
    // A partition dropped by retention in another process since this one last looked: learn and try once more.
    if (!sqlErrorIs(error, 'check_violation') || !/partition/i.test((error as Error).message)) throw error;
    forgetHistoryPartitions(db);
    await ensurePartitions();
    decisions = await withRetry(() => applyUnitOfWork(db, works, malformed, now, options));
  }
  applyDecisions(decisions);

  const outcome = { results: works.map((w) => w.result), counts: countResults(works) };
  recordIngestOutcome(outcome, (performance.now() - started) / 1000);
  return outcome;
}

function readingProblem(
  reading: UpdateEnvelope['readings'][number],
  now: number,
  oldestMs: number,
  retentionDays: number,
): Problem | { value: unknown; observedMs: number } {
  const check = checkSignalValue(reading.signal, reading.value);
  if (!check.ok) return { reason: check.reason, detail: check.detail };
  const observedMs = parseTimestamp(reading.observedAt)!;
  if (observedMs > now + futureAllowanceMs) {
    return {
      reason: 'future_timestamp',
      detail: `observedAt ${reading.observedAt} is more than ${futureAllowanceMs / 1000} s ahead of the server clock (${new Date(now).toISOString()})`,
    };
  }
  if (observedMs < oldestMs) {
    return { reason: 'too_old', detail: `observedAt ${reading.observedAt} is older than the workspace's retention of ${retentionDays} days` };
  }
  return { value: check.value, observedMs };
}

/**
 * A core poll run under the generation before a rollback from core: one that was going when the cutover changed, or
 * the rollback's closing poll. Its readings are the workspace's own, whatever the mode now.
 */
const runBeforeRollback = (state: WorkspaceState, pollGeneration: number | undefined) =>
  state.previousCutover === 'core' && pollGeneration === state.cutoverGeneration - 1;

/**
 * Who may send for the workspace. `legacy`: the legacy poller, and core's poll runs from before a rollback from core;
 * `shadow`: both (core's readings go to the shadow store only, but for its runs from before a rollback); `core`: core.
 */
function workspaceProblem(state: WorkspaceState | undefined, e: UpdateEnvelope, pollGeneration: number | undefined): Problem | undefined {
  if (!state) return { reason: 'unknown_workspace', detail: `workspace ${e.workspaceId} does not exist` };
  if (!state.enabled) return { reason: 'telematics_disabled', detail: `telematics is disabled for workspace ${e.workspaceId}` };
  if (e.source === 'legacy_poll' && state.cutover === 'core') {
    return { reason: 'source_not_owner', detail: 'the workspace is cut over to core polling; legacy_poll updates are no longer accepted' };
  }
  if (e.source === 'poll' && state.cutover === 'legacy' && !runBeforeRollback(state, pollGeneration)) {
    return { reason: 'source_not_owner', detail: 'the workspace is polled by the legacy poller; core poll updates are not accepted' };
  }
  return undefined;
}

/** Core's poll of a workspace in shadow: every check, but its readings land in the shadow store only. */
const isShadow = (state: WorkspaceState, e: UpdateEnvelope, pollGeneration: number | undefined) =>
  e.source === 'poll' && state.cutover === 'shadow' && !runBeforeRollback(state, pollGeneration);

function leaseProblem(held: ReadonlySet<string> | undefined, e: UpdateEnvelope, holder: string | undefined): Problem | undefined {
  if (!held || held.has(e.connectionId)) return undefined;
  return {
    reason: 'not_lease_holder',
    detail: `stream process ${holder} holds no live lease on connection ${e.connectionId}; another process holds it now, or it was released`,
  };
}

function deviceProblem(device: BoundDevice | undefined, e: UpdateEnvelope): Problem | undefined {
  if (!device) {
    return {
      reason: 'unknown_device',
      detail: `device ${e.externalDeviceId} is not bound to any vehicle on connection ${e.connectionId} in this workspace`,
    };
  }
  if (device.provider !== e.provider) {
    return { reason: 'unknown_device', detail: `connection ${e.connectionId} is a ${device.provider} connection, not ${e.provider}` };
  }
  if (!device.connectionEnabled) return { reason: 'device_inactive', detail: `connection ${e.connectionId} is disabled` };
  if (!device.vehicleActive) return { reason: 'device_inactive', detail: `the vehicle bound to device ${e.externalDeviceId} is inactive` };
  return undefined;
}

/** What the transaction decided; applied to the results only once it committed. */
interface Decisions {
  rejectedUpdates: { work: UpdateWork; reason: RejectionReason }[];
  readings: { work: UpdateWork; readingIndex: number; status: ReadingResult['status']; reason?: RejectionReason }[];
}

/** A shaped update that passed the workspace checks: its readings split into those still to judge and those refused. */
interface Judged {
  work: UpdateWork;
  pending: PendingReading[];
  /** Refused before the device was known; stored only if the update itself is processed. */
  refused: { readingIndex: number; problem: Problem }[];
}

/** Steps 2 to 6, in one transaction. Reads `works`, changes nothing outside the database. */
async function applyUnitOfWork(
  db: Database,
  works: readonly UpdateWork[],
  malformed: readonly RejectionRow[],
  now: number,
  options: IngestOptions,
): Promise<Decisions> {
  return db.transaction(async (tx) => {
    const decisions: Decisions = { rejectedUpdates: [], readings: [] };
    const rejections = [...malformed];
    const shaped = works.filter((w) => w.envelope);

    // 2-3. Workspace state and ownership, locked for the transaction; the stream lease likewise.
    const workspaces = await loadWorkspaceStates(tx, [...new Set(shaped.map((w) => w.envelope!.workspaceId))], true);
    const held = options.streamHolder === undefined ? undefined : await lockHeldLeases(tx, options.streamHolder, shaped.map((w) => w.envelope!));
    const judged: Judged[] = [];
    for (const work of shaped) {
      const e = work.envelope!;
      const state = workspaces.get(e.workspaceId);
      const problem = workspaceProblem(state, e, options.pollCutoverGeneration) ?? leaseProblem(held, e, options.streamHolder);
      if (problem) {
        decisions.rejectedUpdates.push({ work, reason: problem.reason });
        rejections.push(updateRejection(work, problem));
        continue;
      }
      // 4, the part that needs no stored state: catalogue and clock.
      const oldestMs = now - state!.retentionDays * dayMs;
      const entry: Judged = { work, pending: [], refused: [] };
      e.readings.forEach((reading, readingIndex) => {
        const checked = readingProblem(reading, now, oldestMs, state!.retentionDays);
        if ('reason' in checked) entry.refused.push({ readingIndex, problem: checked });
        else entry.pending.push({ readingIndex, signal: reading.signal as SignalName, value: checked.value, valueJson: JSON.stringify(checked.value), observedMs: checked.observedMs });
      });
      judged.push(entry);
    }

    // 2. Devices, with their vehicles locked in one global order.
    const keyOf = (e: UpdateEnvelope): DeviceKey => ({ workspaceId: e.workspaceId, connectionId: e.connectionId, externalId: e.externalDeviceId });
    const keys = new Map(judged.map(({ work }) => [deviceKey(keyOf(work.envelope!)), keyOf(work.envelope!)]));
    const devices = await lockBoundDevices(tx, [...keys.values()]);
    // Devices no vehicle is bound to: discovered on their connection, or dropped when an operator ignores them.
    const unbound = await loadUnboundDevices(tx, [...keys].filter(([key]) => !devices.has(key)).map(([, key]) => key));
    const sightings: Sighting[] = [];
    const ignored = new Set<UpdateWork>();

    const processed: (Judged & { vehicleId: string; lastEventSequence: number })[] = [];
    for (const entry of judged) {
      const { work } = entry;
      const key = deviceKey(keyOf(work.envelope!));
      const device = devices.get(key);
      if (!device) {
        const { problem, sighting } = judgeUnbound(entry, unbound.get(key));
        if (sighting) sightings.push(sighting);
        decisions.rejectedUpdates.push({ work, reason: problem.reason });
        // An ignored device's updates are dropped here: counted on its discovered row, never stored as rejections.
        if (sighting?.ignored) ignored.add(work);
        else rejections.push(updateRejection(work, problem));
        continue;
      }
      const problem = deviceProblem(device, work.envelope!);
      if (problem) {
        decisions.rejectedUpdates.push({ work, reason: problem.reason });
        rejections.push(updateRejection(work, problem));
        continue;
      }
      processed.push({ ...entry, vehicleId: device!.vehicleId, lastEventSequence: device!.lastEventSequence });
      // Found before the vehicle was known; stored with it, so an operator can filter one vehicle's rejections.
      for (const { readingIndex, problem: refusal } of entry.refused) {
        decisions.readings.push({ work, readingIndex, status: 'rejected', reason: refusal.reason });
        rejections.push(readingRejection(work, readingIndex, refusal, device!.vehicleId));
      }
    }

    // A workspace in shadow: core's poll readings are judged here against core's own, then kept for parity only.
    const shadowed = new Set(processed.filter(({ work }) => isShadow(workspaces.get(work.envelope!.workspaceId)!, work.envelope!, options.pollCutoverGeneration)));
    const parity = { core: await judgeShadowReadings(tx, [...shadowed], workspaces, decisions, rejections), legacy: [] as ParityReading[] };
    const owned = processed.filter((entry) => !shadowed.has(entry));

    const vehicles = new Map<string, SyncMark & { newestMs: number }>();
    for (const { work, vehicleId, lastEventSequence } of owned) {
      vehicles.set(vehicleId, { workspaceId: work.envelope!.workspaceId, vehicleId, newestObservedAt: null, newestMs: Number.NEGATIVE_INFINITY, lastEventSequence });
    }
    const snapshot = await loadSnapshot(tx, [...vehicles.values()], snapshotValueSignals);

    const history: HistoryRow[] = [];
    const acceptedByVehicle = new Map<string, { workspaceId: string; accepted: AcceptedReading[] }>();
    classifyPending(owned, snapshot, decisions, rejections, ({ work, vehicleId, reading }, status) => {
      decisions.readings.push({ work, readingIndex: reading.readingIndex, status });
      if (status === 'duplicate') return;
      const e = work.envelope!;
      const mark = vehicles.get(vehicleId)!;
      if (reading.observedMs > mark.newestMs) mark.newestMs = reading.observedMs;
      history.push({
        position: decisions.readings.length - 1,
        workspaceId: e.workspaceId,
        vehicleId,
        signal: reading.signal,
        observedAt: new Date(reading.observedMs).toISOString(),
        valueJson: reading.valueJson,
        source: e.source,
        provider: e.provider,
        connectionId: e.connectionId,
        receivedAt: work.receivedAt!,
        advances: status === 'accepted',
      });
      // The legacy poller's side of parity, while core polls beside it.
      const state = workspaces.get(e.workspaceId)!;
      if (e.source === 'legacy_poll' && state.cutover === 'shadow') parity.legacy.push(parityReading(work, vehicleId, reading, state));
      if (status === 'accepted') {
        const entry = acceptedByVehicle.get(vehicleId) ?? { workspaceId: e.workspaceId, accepted: [] };
        acceptedByVehicle.set(vehicleId, entry);
        entry.accepted.push({ signal: reading.signal, value: reading.value, observedMs: reading.observedMs, source: e.source, provider: e.provider });
      }
    });

    // The events these changes cause, numbered on the counters of the vehicles this transaction locked: the sync
    // marks advance the counters, and the events are written last, in the same transaction (committed with the
    // changes or not at all).
    const events = options.events === false ? [] : unitOfWorkEvents(acceptedByVehicle, snapshot, workspaces, vehicles);
    const synced = [...vehicles.values()].map(({ workspaceId, vehicleId, newestMs, lastEventSequence }) => ({
      workspaceId,
      vehicleId,
      newestObservedAt: Number.isFinite(newestMs) ? new Date(newestMs).toISOString() : null,
      lastEventSequence,
    }));
    const alreadyStored = await writeUnitOfWork(tx, {
      history,
      synced,
      rejections: aggregateRejections(rejections, now),
      discovered: aggregateSightings(sightings, now),
      readingCounts: aggregateReadingCounts(readingCounts(shaped, workspaces, decisions, ignored), now),
    });
    for (const position of alreadyStored) decisions.readings[position]!.status = 'duplicate';
    await recordParity(tx, 'core', parity.core);
    await recordParity(tx, 'legacy', parity.legacy);
    const sessions = owned.flatMap(({ work, vehicleId }) =>
      (work.envelope!.chargingSessions ?? []).map((session) => ({ ...session, workspaceId: work.envelope!.workspaceId, connectionId: work.envelope!.connectionId, vehicleId, provider: work.envelope!.provider, receivedAt: work.receivedAt! })),
    );
    if (sessions.length > 0) await writeChargingSessions(tx, sessions);
    await writeEvents(tx, events);
    if (options.withinTransaction) await options.withinTransaction(tx);
    return decisions;
  });
}

/**
 * Step 5 for the pending readings of `entries`, against `snapshot` (classify.ts): a refused reading is recorded
 * here; each of the others is handed to `take` with its outcome, in batch order. Vehicle ids are UUIDs, unique
 * across workspaces, so grouping by vehicle never mixes tenants.
 */
function classifyPending(
  entries: readonly (Judged & { vehicleId: string })[],
  snapshot: ReadonlyMap<string, SnapshotPoint>,
  decisions: Decisions,
  rejections: RejectionRow[],
  take: (pending: { work: UpdateWork; vehicleId: string; reading: PendingReading }, status: 'accepted' | 'late' | 'duplicate') => void,
): void {
  const pending = entries.flatMap(({ work, vehicleId, pending: readings }) => readings.map((reading) => ({ work, vehicleId, reading })));
  const candidates: Candidate[] = pending.map(({ vehicleId, reading }, position) => ({ position, vehicleId, signal: reading.signal, value: reading.value, observedMs: reading.observedMs }));
  const outcomes = classifyReadings(candidates, snapshot);
  pending.forEach((item, position) => {
    const outcome = outcomes[position]!;
    if (outcome.status === 'rejected') {
      decisions.readings.push({ work: item.work, readingIndex: item.reading.readingIndex, status: 'rejected', reason: outcome.reason });
      rejections.push(readingRejection(item.work, item.reading.readingIndex, outcome, item.vehicleId));
      return;
    }
    take(item, outcome.status);
  });
}

/** A reading as parity keeps it. */
function parityReading(work: UpdateWork, vehicleId: string, reading: PendingReading, state: WorkspaceState): ParityReading {
  const e = work.envelope!;
  return {
    workspaceId: e.workspaceId,
    vehicleId,
    signal: reading.signal,
    observedAt: new Date(reading.observedMs).toISOString(),
    valueJson: reading.valueJson,
    receivedAt: work.receivedAt!,
    connectionId: e.connectionId,
    matchSeconds: state.parityMatchSeconds,
  };
}

/**
 * Core's poll readings of workspaces in shadow, after every check before them: the counters judged against core's
 * own newest shadow readings (never backwards), duplicates within the batch found; the rest answered `shadowed` and
 * given back for the shadow store. Refusals are recorded as any others.
 */
async function judgeShadowReadings(
  tx: Sql,
  entries: readonly (Judged & { vehicleId: string })[],
  workspaces: ReadonlyMap<string, WorkspaceState>,
  decisions: Decisions,
  rejections: RejectionRow[],
): Promise<ParityReading[]> {
  if (entries.length === 0) return [];
  const vehicles = [...new Map(entries.map(({ work, vehicleId }) => [vehicleId, { workspaceId: work.envelope!.workspaceId, vehicleId }])).values()];
  const points = await loadShadowPoints(tx, vehicles, counterSignals);
  const kept: ParityReading[] = [];
  classifyPending(entries, points, decisions, rejections, ({ work, vehicleId, reading }, status) => {
    decisions.readings.push({ work, readingIndex: reading.readingIndex, status: status === 'duplicate' ? 'duplicate' : 'shadowed' });
    if (status !== 'duplicate') kept.push(parityReading(work, vehicleId, reading, workspaces.get(work.envelope!.workspaceId)!));
  });
  return kept;
}

/**
 * What each vehicle's accepted readings tell, judged against the snapshot the unit of work found, numbered after
 * each vehicle's event counter; the counters in `vehicles` are advanced past them.
 */
function unitOfWorkEvents(
  acceptedByVehicle: ReadonlyMap<string, { workspaceId: string; accepted: AcceptedReading[] }>,
  snapshot: ReadonlyMap<string, SnapshotPoint>,
  workspaces: ReadonlyMap<string, WorkspaceState>,
  vehicles: ReadonlyMap<string, { lastEventSequence: number }>,
): EventDraft[] {
  const events: EventDraft[] = [];
  for (const [vehicleId, { workspaceId, accepted }] of acceptedByVehicle) {
    const soc = snapshot.get(snapshotKey(vehicleId, 'soc_pct'))?.value;
    const charging = snapshot.get(snapshotKey(vehicleId, 'charging_state'))?.value;
    const before = { ...(typeof soc === 'number' ? { socPct: soc } : {}), ...(typeof charging === 'string' ? { chargingState: charging } : {}) };
    const counter = vehicles.get(vehicleId)!;
    for (const draft of vehicleEvents({ workspaceId, vehicleId, before, accepted, socThresholdsPct: workspaces.get(workspaceId)!.socThresholdsPct })) {
      counter.lastEventSequence += 1;
      draft.sequence = counter.lastEventSequence;
      events.push(draft);
    }
  }
  return events;
}

/** The sample a discovered device is shown with: the newest catalogue-valid reading of each signal of the update. */
function sampleOf(pending: readonly PendingReading[]): Sighting['sample'] {
  const newest = new Map<string, PendingReading>();
  for (const reading of pending) {
    const kept = newest.get(reading.signal);
    if (!kept || reading.observedMs >= kept.observedMs) newest.set(reading.signal, reading);
  }
  return Object.fromEntries([...newest].map(([signal, r]) => [signal, { value: r.value, observedAt: new Date(r.observedMs).toISOString() }]));
}

/**
 * An update from a device bound to no vehicle of the workspace. On a connection of the workspace, of the provider it
 * says, the device is discovered there (seen, counted, sampled): refused `unknown_device`, or, when an operator
 * ignores it, `device_ignored` and not stored. Naming a connection the workspace does not have, or one of another
 * provider, it is refused and not discovered.
 */
function judgeUnbound(entry: Judged, known: UnboundDevice | undefined): { problem: Problem; sighting?: Sighting } {
  const e = entry.work.envelope!;
  if (!known) {
    return {
      problem: { reason: 'unknown_device', aboutConnection: true, detail: `device ${e.externalDeviceId} is not bound to any vehicle on connection ${e.connectionId}, which this workspace does not have` },
    };
  }
  if (known.provider !== e.provider) {
    return { problem: { reason: 'unknown_device', aboutConnection: true, detail: `connection ${e.connectionId} is a ${known.provider} connection, not ${e.provider}` } };
  }
  const sighting: Sighting = {
    workspaceId: e.workspaceId,
    connectionId: e.connectionId,
    externalId: e.externalDeviceId,
    provider: e.provider,
    readings: e.readings.length,
    ignored: known.status === 'ignored',
    sample: sampleOf(entry.pending),
  };
  if (sighting.ignored) {
    return { problem: { reason: 'device_ignored', detail: `device ${e.externalDeviceId} on connection ${e.connectionId} is ignored in this workspace` }, sighting };
  }
  return {
    problem: {
      reason: 'unknown_device',
      aboutConnection: true,
      detail: `device ${e.externalDeviceId} is not bound to any vehicle on connection ${e.connectionId} in this workspace; it is listed in the discovered devices`,
    },
    sighting,
  };
}

/**
 * Readings taken and rejected per connection, for the updates of workspaces that exist: what health compares. An
 * ignored device's readings never reached ingest and are not counted.
 */
function readingCounts(
  shaped: readonly UpdateWork[],
  workspaces: ReadonlyMap<string, WorkspaceState>,
  decisions: Decisions,
  ignored: ReadonlySet<UpdateWork>,
): { workspaceId: string; connectionId: string; readings: number; rejected: number }[] {
  const rejectedWhole = new Set(decisions.rejectedUpdates.map((r) => r.work));
  const rejectedReadings = new Map<UpdateWork, number>();
  for (const r of decisions.readings) if (r.status === 'rejected') rejectedReadings.set(r.work, (rejectedReadings.get(r.work) ?? 0) + 1);
  return shaped
    .filter((w) => workspaces.has(w.envelope!.workspaceId) && !ignored.has(w))
    .map((w) => {
      const e = w.envelope!;
      const readings = e.readings.length;
      return { workspaceId: e.workspaceId, connectionId: e.connectionId, readings, rejected: rejectedWhole.has(w) ? readings : (rejectedReadings.get(w) ?? 0) };
    });
}

function applyDecisions(decisions: Decisions): void {
  for (const { work, reason } of decisions.rejectedUpdates) markUpdateRejected(work, reason);
  for (const { work, readingIndex, status, reason } of decisions.readings) {
    const result = work.result.readings[readingIndex]!;
    result.status = status;
    if (reason) result.reason = reason;
  }
}

/** Deadlocks and serialization failures are retried; every attempt starts clean (the transaction rolled back). */
async function withRetry<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      const retryable = sqlErrorIs(error, 'deadlock_detected') || sqlErrorIs(error, 'serialization_failure');
      if (!retryable || tries >= 3) throw error;
    }
  }
}

function countResults(works: readonly UpdateWork[]): IngestCounts {
  const counts: IngestCounts = { updatesProcessed: 0, updatesRejected: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0, shadowed: 0 };
  for (const { result } of works) {
    if (result.status === 'processed') counts.updatesProcessed += 1;
    else counts.updatesRejected += 1;
    for (const reading of result.readings) counts[reading.status] += 1;
  }
  return counts;
}
