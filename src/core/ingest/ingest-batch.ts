/**
 * The ingest handler: the single acceptance point for canonical updates from every source (DESIGN §4). The
 * scheduled poll runner calls it in-process; the stream runtime and legacy pollers reach it through
 * `POST /internal/v1/ingest`. Steps:
 *
 *  1. shape: each update against the envelope schema (`malformed`);
 *  2. identity: workspace exists, telematics enabled, device bound to this connection and active;
 *  3. ownership: the workspace's cutover decides whether `poll` or `legacy_poll` owns it; `stream` always may;
 *  4. each reading: catalogue (`unknown_signal`, `invalid_value`), clock (`future_timestamp`, `too_old`),
 *     counters against the snapshot (`implausible_value`);
 *  5. classify: `accepted`, `late`, `duplicate`;
 *  6. one transaction writes history, snapshot, rejections, sync marks and whatever the caller adds (a poll's
 *     feed cursor). If it fails nothing is written.
 */
import { checkSignalValue, nonDecreasingRule, signalNames, type SignalName } from '../../canonical/signals.ts';
import { parseTimestamp, updateEnvelopeSchema, type UpdateEnvelope } from '../../canonical/update.ts';
import { sqlErrorIs, type Database, type Sql } from '../db/database.ts';
import { ensureHistoryPartitions, forgetHistoryPartitions } from '../db/history-partitions.ts';
import { classifyReadings, type Candidate } from './classify.ts';
import {
  futureAllowanceMs,
  type IngestCounts,
  type IngestOutcome,
  type ReadingResult,
  type RejectionReason,
  type UpdateResult,
} from './reasons.ts';
import { recordIngestOutcome } from '../metrics.ts';
import { storableJson } from './storable-json.ts';
import {
  deviceKey,
  loadSnapshot,
  loadWorkspaceStates,
  lockBoundDevices,
  writeUnitOfWork,
  type BoundDevice,
  type DeviceKey,
  type HistoryRow,
  type RejectionRow,
  type WorkspaceState,
} from './store.ts';

export interface IngestOptions {
  /** The server clock, in ms; injectable for tests of the time rules. */
  now?: number;
  /** More writes for the same unit of work (the poll runner advances its feed cursor here). */
  withinTransaction?: (tx: Sql) => Promise<void>;
}

const nilWorkspace = '00000000-0000-0000-0000-000000000000';
const dayMs = 86_400_000;
const counterSignals = signalNames.filter((signal) => nonDecreasingRule(signal) !== undefined);
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A reading that passed every check needing no stored state. */
interface PendingReading {
  updateIndex: number;
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
  result: UpdateResult;
  pending: PendingReading[];
}

function firstIssue(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return 'does not match the canonical update schema';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** What to keep of a raw value that failed the shape check: the workspace, if it names one we can key by. */
function rawWorkspaceId(raw: unknown): string {
  const id = (raw as { workspaceId?: unknown } | null)?.workspaceId;
  return typeof id === 'string' && uuidPattern.test(id) ? id.toLowerCase() : nilWorkspace;
}

function envelopeWithout(envelope: UpdateEnvelope, readingIndex?: number): unknown {
  const { readings, ...rest } = envelope;
  return readingIndex === undefined ? envelope : { ...rest, readings: [readings[readingIndex]] };
}

export async function ingestBatch(db: Database, rawUpdates: readonly unknown[], options: IngestOptions = {}): Promise<IngestOutcome> {
  const started = performance.now();
  const now = options.now ?? Date.now();
  const rejections: RejectionRow[] = [];

  const rejectUpdate = (work: UpdateWork, reason: RejectionReason, detail: string) => {
    work.result.status = 'rejected';
    work.result.reason = reason;
    work.result.readings = (work.envelope?.readings ?? []).map((r) => ({ signal: r.signal, status: 'rejected', reason }));
    work.pending = [];
    const e = work.envelope;
    rejections.push({
      workspaceId: e?.workspaceId.toLowerCase() ?? rawWorkspaceId(work.raw),
      reason,
      detail,
      source: e?.source ?? null,
      provider: e?.provider ?? null,
      connectionId: e?.connectionId ?? null,
      externalDeviceId: e?.externalDeviceId ?? null,
      vehicleId: null,
      signal: null,
      updateJson: storableJson(work.raw),
    });
  };

  const rejectReading = (work: UpdateWork, readingIndex: number, reason: RejectionReason, detail: string, vehicleId: string | null) => {
    const envelope = work.envelope!;
    const reading = work.result.readings[readingIndex]!;
    reading.status = 'rejected';
    reading.reason = reason;
    rejections.push({
      workspaceId: envelope.workspaceId.toLowerCase(),
      reason,
      detail,
      source: envelope.source,
      provider: envelope.provider,
      connectionId: envelope.connectionId,
      externalDeviceId: envelope.externalDeviceId,
      vehicleId,
      signal: envelope.readings[readingIndex]!.signal,
      updateJson: storableJson(envelopeWithout(envelope, readingIndex)),
    });
  };

  // 1. Shape.
  const works: UpdateWork[] = rawUpdates.map((raw, index) => {
    const work: UpdateWork = { index, raw, result: { index, status: 'processed', readings: [] }, pending: [] };
    const parsed = updateEnvelopeSchema.safeParse(raw);
    if (!parsed.success) {
      rejectUpdate(work, 'malformed', firstIssue(parsed.error));
      return work;
    }
    // UUIDs are compared as text in the maps below; one spelling for each.
    work.envelope = {
      ...parsed.data,
      workspaceId: parsed.data.workspaceId.toLowerCase(),
      connectionId: parsed.data.connectionId.toLowerCase(),
    };
    work.result.readings = parsed.data.readings.map((r): ReadingResult => ({ signal: r.signal, status: 'accepted' }));
    return work;
  });

  // 2-3. Workspace and ownership (no locks needed: policy and cutover are read as committed).
  const workspaceIds = [...new Set(works.flatMap((w) => (w.envelope ? [w.envelope.workspaceId] : [])))];
  const workspaces = await loadWorkspaceStates(db, workspaceIds);
  for (const work of works) {
    const e = work.envelope;
    if (!e) continue;
    const state = workspaces.get(e.workspaceId);
    const problem = workspaceProblem(state, e);
    if (problem) rejectUpdate(work, problem.reason, problem.detail);
  }

  // 4 (the part that needs no stored state): catalogue and clock.
  for (const work of works) {
    const e = work.envelope;
    if (!e || work.result.status === 'rejected') continue;
    const retentionDays = workspaces.get(e.workspaceId)!.retentionDays;
    const oldestMs = now - retentionDays * dayMs;
    e.readings.forEach((reading, readingIndex) => {
      const check = checkSignalValue(reading.signal, reading.value);
      if (!check.ok) return rejectReading(work, readingIndex, check.reason, check.detail, null);
      const observedMs = parseTimestamp(reading.observedAt)!;
      if (observedMs > now + futureAllowanceMs) {
        return rejectReading(
          work,
          readingIndex,
          'future_timestamp',
          `observedAt ${reading.observedAt} is more than ${futureAllowanceMs / 1000} s ahead of the server clock (${new Date(now).toISOString()})`,
          null,
        );
      }
      if (observedMs < oldestMs) {
        return rejectReading(
          work,
          readingIndex,
          'too_old',
          `observedAt ${reading.observedAt} is older than the workspace's retention of ${retentionDays} days`,
          null,
        );
      }
      work.pending.push({
        updateIndex: work.index,
        readingIndex,
        signal: reading.signal as SignalName,
        value: check.value,
        valueJson: JSON.stringify(check.value),
        observedMs,
      });
    });
  }

  await ensureHistoryPartitions(
    db,
    works.flatMap((w) => w.pending.map((p) => p.observedMs)),
  );

  const attempt = () => applyUnitOfWork(db, works, rejections, rejectUpdate, rejectReading, options);
  try {
    await withRetry(attempt);
  } catch (error) {
    // A partition dropped by retention in another process since this one last looked: learn and try once more.
    if (!sqlErrorIs(error, 'check_violation') || !/partition/i.test((error as Error).message)) throw error;
    forgetHistoryPartitions(db);
    await ensureHistoryPartitions(db, works.flatMap((w) => w.pending.map((p) => p.observedMs)));
    await withRetry(attempt);
  }

  const outcome = { results: works.map((w) => w.result), counts: countResults(works) };
  recordIngestOutcome(outcome, (performance.now() - started) / 1000);
  return outcome;
}

function workspaceProblem(
  state: WorkspaceState | undefined,
  e: UpdateEnvelope,
): { reason: RejectionReason; detail: string } | undefined {
  if (!state) return { reason: 'unknown_workspace', detail: `workspace ${e.workspaceId} does not exist` };
  if (!state.enabled) return { reason: 'telematics_disabled', detail: `telematics is disabled for workspace ${e.workspaceId}` };
  if (e.source === 'legacy_poll' && state.cutover === 'core') {
    return { reason: 'source_not_owner', detail: 'the workspace is cut over to core polling; legacy_poll updates are no longer accepted' };
  }
  if (e.source === 'poll' && state.cutover === 'legacy') {
    return { reason: 'source_not_owner', detail: 'the workspace is polled by the legacy poller; core poll updates are not accepted' };
  }
  return undefined;
}

type RejectUpdate = (work: UpdateWork, reason: RejectionReason, detail: string) => void;
type RejectReading = (work: UpdateWork, readingIndex: number, reason: RejectionReason, detail: string, vehicleId: string | null) => void;

/**
 * Steps 2 (devices), 4 (counters), 5 and 6 inside one transaction. Results are first computed on copies, so a
 * retried transaction starts from the same state.
 */
async function applyUnitOfWork(
  db: Database,
  works: UpdateWork[],
  rejectionsBefore: RejectionRow[],
  rejectUpdate: RejectUpdate,
  rejectReading: RejectReading,
  options: IngestOptions,
): Promise<void> {
  const snapshotOfResults = works.map((w) => ({ result: structuredClone(w.result), pending: w.pending }));
  const rejectionCount = rejectionsBefore.length;
  try {
    await db.transaction(async (tx) => {
      const live = works.filter((w) => w.envelope && w.result.status === 'processed');
      const keys = new Map<string, DeviceKey>();
      for (const work of live) {
        const e = work.envelope!;
        const key = { workspaceId: e.workspaceId, connectionId: e.connectionId, externalId: e.externalDeviceId };
        keys.set(deviceKey(key), key);
      }
      const devices = await lockBoundDevices(tx, [...keys.values()]);

      const vehicleOf = new Map<number, BoundDevice>();
      for (const work of live) {
        const e = work.envelope!;
        const device = devices.get(deviceKey({ workspaceId: e.workspaceId, connectionId: e.connectionId, externalId: e.externalDeviceId }));
        const problem = deviceProblem(device, e);
        if (problem) rejectUpdate(work, problem.reason, problem.detail);
        else vehicleOf.set(work.index, device!);
      }

      const processed = live.filter((w) => w.result.status === 'processed');
      const vehicles = new Map<string, { workspaceId: string; vehicleId: string }>();
      for (const work of processed) {
        const vehicleId = vehicleOf.get(work.index)!.vehicleId;
        vehicles.set(`${work.envelope!.workspaceId}|${vehicleId}`, { workspaceId: work.envelope!.workspaceId, vehicleId });
      }
      const snapshot = await loadSnapshot(tx, [...vehicles.values()], counterSignals);

      const pending = processed.flatMap((work) => work.pending.map((reading) => ({ work, reading })));
      const candidates: Candidate[] = pending.map(({ work, reading }, position) => ({
        position,
        // Vehicle ids are unique across workspaces (UUIDs), so grouping by vehicle cannot mix tenants.
        vehicleId: vehicleOf.get(work.index)!.vehicleId,
        signal: reading.signal,
        value: reading.value,
        observedMs: reading.observedMs,
      }));
      const outcomes = classifyReadings(candidates, snapshot);

      const history: HistoryRow[] = [];
      pending.forEach(({ work, reading }, position) => {
        const outcome = outcomes[position]!;
        const result = work.result.readings[reading.readingIndex]!;
        const vehicleId = vehicleOf.get(work.index)!.vehicleId;
        if (outcome.status === 'rejected') {
          rejectReading(work, reading.readingIndex, outcome.reason, outcome.detail, vehicleId);
          return;
        }
        result.status = outcome.status;
        if (outcome.status === 'duplicate') return;
        const e = work.envelope!;
        history.push({
          position,
          workspaceId: e.workspaceId,
          vehicleId,
          signal: reading.signal,
          observedAt: new Date(reading.observedMs).toISOString(),
          valueJson: reading.valueJson,
          source: e.source,
          provider: e.provider,
          connectionId: e.connectionId,
          receivedAt: new Date(parseTimestamp(e.receivedAt)!).toISOString(),
        });
      });

      const alreadyStored = await writeUnitOfWork(tx, {
        history,
        synced: [...vehicles.values()],
        rejections: rejectionsBefore,
      });
      for (const position of alreadyStored) {
        const { work, reading } = pending[position]!;
        work.result.readings[reading.readingIndex]!.status = 'duplicate';
      }
      if (options.withinTransaction) await options.withinTransaction(tx);
    });
  } catch (error) {
    // Put results and rejections back as they were before this attempt.
    works.forEach((work, i) => {
      work.result = snapshotOfResults[i]!.result;
      work.pending = snapshotOfResults[i]!.pending;
    });
    rejectionsBefore.length = rejectionCount;
    throw error;
  }
}

function deviceProblem(device: BoundDevice | undefined, e: UpdateEnvelope): { reason: RejectionReason; detail: string } | undefined {
  if (!device) {
    return {
      reason: 'unknown_device',
      detail: `device ${e.externalDeviceId} is not bound to any vehicle on connection ${e.connectionId} in this workspace`,
    };
  }
  if (device.provider !== e.provider) {
    return {
      reason: 'unknown_device',
      detail: `connection ${e.connectionId} is a ${device.provider} connection, not ${e.provider}`,
    };
  }
  if (!device.connectionEnabled) return { reason: 'device_inactive', detail: `connection ${e.connectionId} is disabled` };
  if (!device.vehicleActive) return { reason: 'device_inactive', detail: `the vehicle bound to device ${e.externalDeviceId} is inactive` };
  return undefined;
}

/** Deadlocks and serialization failures are retried; every attempt starts clean (the transaction rolled back). */
async function withRetry(attempt: () => Promise<void>): Promise<void> {
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
  const counts: IngestCounts = { updatesProcessed: 0, updatesRejected: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0 };
  for (const { result } of works) {
    if (result.status === 'processed') counts.updatesProcessed += 1;
    else counts.updatesRejected += 1;
    for (const reading of result.readings) counts[reading.status] += 1;
  }
  return counts;
}
