/**
 * The backfill worker: claims one job at a time by lease, splits its period into the provider's windows, reads each
 * window through the provider's history path and hands every page to the ingest handler, the same one polling
 * uses, so readings older than the snapshot stay `late` (history only) and readings already stored are
 * `duplicate`. Each page's readings and the job's progress (window, position in it, counts) commit in one
 * transaction fenced by the lease: a worker that lost its lease writes nothing, and a restart, here or in another
 * process, resumes from the last committed page.
 *
 * Provider errors pick what happens by class (DESIGN §5): `rate_limited` waits Retry-After (within the job when
 * short, else the job goes back to the queue until then), `transient` and `malformed_response` back off and try
 * again a few times, `auth` and `permanent` fail the job with that class. One failing job never stops the worker.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CanonicalUpdate } from '../../canonical/update.ts';
import { batchesWithinLimits } from '../../canonical/update.ts';
import type { Logger } from '../../logging.ts';
import type { HistoryAdapter, HistoryPage } from '../../providers/history-adapter.ts';
import { optionsSchemaOf } from '../../providers/provider.ts';
import { isProviderError } from '../../providers/provider-error.ts';
import type { Database, Sql } from '../db/database.ts';
import { ingestBatch } from '../ingest/ingest-batch.ts';
import { runWhenAdmitted, type IngestGate } from '../ingest/ingest-gate.ts';
import { listBoundDevices } from '../polling/poll-store.ts';
import { CredentialsUnreadableError, decryptCredentials } from '../registry/credentials-cipher.ts';
import { sleepUnlessAborted } from '../time.ts';
import {
  BackfillLeaseLostError,
  claimBackfillJob,
  finishBackfillJob,
  recordBackfillProgress,
  renewBackfillLease,
  type BackfillLease,
  type BackfillOutcome,
  type ClaimedBackfill,
} from './backfill-store.ts';

export interface BackfillRunnerOptions {
  /** How often an idle worker looks for due jobs. */
  intervalMs: number;
  /** How long a claim lasts without progress; renewed with every page. */
  leaseMs: number;
  /** Retry-Afters up to this long are waited out within the job; longer ones put it back in the queue. */
  maxInlineRetryAfterMs: number;
  /** Tries of one window after transient failures before the job goes back to the queue. */
  transientRetries: number;
  /** Claims of one job before a transient failure fails it for good. */
  maxAttempts: number;
  /**
   * A pause after every page: a backfill shares the provider's rate limits with the connection's polls, and must not
   * spend them (a job reads as fast as the provider answers otherwise). 0 for none.
   */
  pagePauseMs: number;
  now?: () => number;
  /** Waits (a Retry-After, a back-off); injectable so tests move their clock instead. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  holder?: string;
}

export interface BackfillRunnerDeps {
  db: Database;
  ingestGate: IngestGate;
  secretKey: Buffer;
  logger: Logger;
  adapters: ReadonlyMap<string, HistoryAdapter>;
}

export interface BackfillRunner {
  /** Claims and runs one due job; false when none was due. Never throws for a job's failure. */
  runOnce(): Promise<boolean>;
  /** Works the queue every `intervalMs` until stopped. Idempotent. */
  start(): void;
  /** Stops claiming, aborts the job in hand (its last committed page stays) and waits for it. Idempotent. */
  stop(): Promise<void>;
}

export const defaultBackfillRunnerOptions: BackfillRunnerOptions = {
  intervalMs: 5000,
  leaseMs: 120_000,
  maxInlineRetryAfterMs: 30_000,
  transientRetries: 3,
  maxAttempts: 5,
  pagePauseMs: 100,
};


/** A job-level failure that is ours or the connection's, with the class it is recorded under. */
class JobError extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    readonly status: 'failed' | 'unsupported' = 'failed',
  ) {
    super(message);
  }
}


export function createBackfillRunner(deps: BackfillRunnerDeps, given: Partial<BackfillRunnerOptions> = {}): BackfillRunner {
  const options = { ...defaultBackfillRunnerOptions, ...given };
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? sleepUnlessAborted;
  const random = options.random ?? Math.random;
  const holder = options.holder ?? `${hostname()}:${process.pid}#${randomBytes(4).toString('hex')}`;
  const sessions = new Map<string, Map<string, unknown>>();
  const log = deps.logger.child({ component: 'backfill-runner' });
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let inFlight: Promise<unknown> | undefined;
  let abort = new AbortController();

  /** One page into ingest, its progress in the last batch's transaction. */
  async function commitPage(job: ClaimedBackfill, lease: BackfillLease, page: HistoryPage, windowsDone: number, signal: AbortSignal): Promise<void> {
    const receivedAt = new Date(now()).toISOString();
    const updates: CanonicalUpdate[] = page.devices
      .filter((device) => device.readings.length > 0)
      .map((device) => ({
        workspaceId: job.workspaceId,
        provider: job.provider,
        connectionId: job.connectionId,
        externalDeviceId: device.externalDeviceId,
        // The source the connection's readings always come by: the workspace's cutover judges them as it judges those.
        source: job.transport === 'stream' ? 'stream' : 'poll',
        receivedAt,
        readings: device.readings,
      }));
    const batches = batchesWithinLimits(updates);
    const progress = { windowsDone: page.final ? windowsDone + 1 : windowsDone, windowCursor: page.final ? null : page.cursor };
    const fetched = updates.reduce((n, update) => n + update.readings.length, 0);
    const none = { fetched: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0, requests: 0 };
    if (batches.length === 0) {
      await deps.db.transaction((tx) => recordBackfillProgress(tx, lease, now(), { ...none, ...progress, requests: page.requests }));
      return;
    }
    // Earlier batches of a page commit without progress (a restart re-reads the page; ingest drops what they
    // stored); the last one commits the page's position with the counts known by then. Its own counts are only
    // known once it committed, so they follow in a statement of their own.
    const earlier = { accepted: 0, late: 0, duplicate: 0, rejected: 0 };
    for (const [i, batch] of batches.entries()) {
      const last = i === batches.length - 1;
      const withinTransaction = (tx: Sql) => recordBackfillProgress(tx, lease, now(), { ...none, ...progress, ...earlier, fetched, requests: page.requests });
      const outcome = await runWhenAdmitted(deps.ingestGate, () => ingestBatch(deps.db, batch, { now: now(), ...(last ? { withinTransaction } : {}) }), { signal, random, sleep });
      const counts = { accepted: outcome.counts.accepted, late: outcome.counts.late, duplicate: outcome.counts.duplicate, rejected: outcome.counts.rejected };
      if (!last) {
        for (const key of ['accepted', 'late', 'duplicate', 'rejected'] as const) earlier[key] += counts[key];
      } else {
        await recordBackfillProgress(deps.db, lease, now(), { ...none, ...progress, ...counts });
      }
    }
  }

  async function runJob(job: ClaimedBackfill, signal: AbortSignal): Promise<BackfillOutcome> {
    const lease: BackfillLease = { workspaceId: job.workspaceId, jobId: job.id, holder, leaseMs: options.leaseMs };
    const adapter = deps.adapters.get(job.provider);
    if (!adapter) throw new JobError('unsupported', `provider ${job.provider} has no history path`, 'unsupported');
    if (!job.connectionEnabled) throw new JobError('permanent', 'the connection is disabled; enable it and ask again');
    let credentials: Record<string, unknown>;
    try {
      credentials = decryptCredentials(deps.secretKey, { workspaceId: job.workspaceId, connectionId: job.connectionId }, job.credentialsCiphertext);
    } catch (error) {
      if (!(error instanceof CredentialsUnreadableError)) throw error;
      throw new JobError('credentials_unreadable', `${error.message}; enter the connection's credentials again`);
    }
    const parsed = adapter.contract.credentials.safeParse(credentials);
    if (!parsed.success) throw new JobError('permanent', 'the stored credentials do not fit this provider');
    const parsedOptions = optionsSchemaOf(adapter.contract).safeParse(job.options ?? {});
    if (!parsedOptions.success) throw new JobError('permanent', "the connection's options do not fit this provider");
    const devices = job.devices ?? (await listBoundDevices(deps.db, job.workspaceId, job.connectionId));
    const session = sessions.get(job.connectionId) ?? new Map<string, unknown>();
    sessions.set(job.connectionId, session);
    const context = { baseUrl: job.baseUrl, credentials: parsed.data, options: parsedOptions.data, signal, session };
    const windowMs = Math.max(1, Math.ceil((job.toMs - job.fromMs + 1) / Math.max(1, job.windowsTotal)));

    let windowsDone = job.windowsDone;
    let cursor: unknown = job.windowCursor ?? null;
    let transientLeft = options.transientRetries;
    // Short Retry-Afters waited out within one claim; past these the job goes back to the queue like a long one.
    let rateLimitedLeft = 10;
    while (windowsDone < job.windowsTotal) {
      if (signal.aborted) throw new BackfillLeaseLostError();
      if (devices.length === 0) {
        await deps.db.transaction((tx) => recordBackfillProgress(tx, lease, now(), { windowsDone: job.windowsTotal, windowCursor: null, fetched: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0, requests: 0 }));
        break;
      }
      const fromMs = job.fromMs + windowsDone * windowMs;
      const toMs = Math.min(job.toMs, fromMs + windowMs - 1);
      try {
        let finalSeen = false;
        for await (const page of adapter.fetchHistory(context, { devices, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), cursor })) {
          await commitPage(job, lease, page, windowsDone, signal);
          if (options.pagePauseMs > 0) await sleep(options.pagePauseMs, signal);
          if (page.final) {
            finalSeen = true;
            break;
          }
          cursor = page.cursor;
        }
        if (!finalSeen) {
          await deps.db.transaction((tx) => recordBackfillProgress(tx, lease, now(), { windowsDone: windowsDone + 1, windowCursor: null, fetched: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0, requests: 0 }));
        }
        windowsDone += 1;
        cursor = null;
        transientLeft = options.transientRetries;
      } catch (error) {
        if (signal.aborted || !isProviderError(error)) throw error;
        const wait = error.retryAfterMs ?? 60_000;
        if (error.errorClass === 'rate_limited') {
          if (wait > options.maxInlineRetryAfterMs || rateLimitedLeft === 0) return { status: 'queued', errorClass: 'rate_limited', message: error.message, notBeforeMs: now() + wait };
          rateLimitedLeft -= 1;
          log.debug({ 'fleetwire.backfill.id': job.id, 'fleetwire.retry_after_ms': wait }, 'rate limited; waiting within the job');
          await renewBackfillLease(deps.db, lease, now(), wait);
          await sleep(wait, signal);
          continue;
        }
        if (error.errorClass === 'transient' || error.errorClass === 'malformed_response') {
          if (transientLeft > 0) {
            transientLeft -= 1;
            await sleep(500 * 2 ** (options.transientRetries - transientLeft - 1) * (0.5 + random()), signal);
            continue;
          }
          if (job.attempts < options.maxAttempts) {
            return { status: 'queued', errorClass: error.errorClass, message: error.message, notBeforeMs: now() + 60_000 * job.attempts * (0.5 + random()) };
          }
        }
        return { status: 'failed', errorClass: error.errorClass, message: error.message };
      }
    }
    return { status: 'succeeded' };
  }

  async function runOnce(): Promise<boolean> {
    if (stopping) return false;
    const job = await claimBackfillJob(deps.db, { holder, leaseMs: options.leaseMs, nowMs: now() });
    if (!job) return false;
    const lease: BackfillLease = { workspaceId: job.workspaceId, jobId: job.id, holder, leaseMs: options.leaseMs };
    const jobLog = log.child({ 'fleetwire.workspace.id': job.workspaceId, 'fleetwire.connection.id': job.connectionId, 'fleetwire.backfill.id': job.id });
    let outcome: BackfillOutcome;
    try {
      outcome = await runJob(job, abort.signal);
    } catch (error) {
      if (error instanceof BackfillLeaseLostError || abort.signal.aborted) {
        jobLog.info('backfill stopped; its last committed page stays, and the job resumes from there');
        return true;
      }
      if (error instanceof JobError) outcome = { status: error.status, errorClass: error.errorClass, message: error.message };
      else {
        jobLog.error({ err: error }, 'backfill failed on our side');
        outcome = job.attempts < options.maxAttempts
          ? { status: 'queued', errorClass: 'internal', message: (error as Error).message ?? String(error), notBeforeMs: now() + 60_000 }
          : { status: 'failed', errorClass: 'internal', message: (error as Error).message ?? String(error) };
      }
    }
    const recorded = await finishBackfillJob(deps.db, lease, outcome);
    if (!recorded) jobLog.info('backfill outcome not recorded: another worker holds the job now');
    else if (outcome.status === 'succeeded') jobLog.info('backfill succeeded');
    else jobLog.warn({ 'error.type': outcome.errorClass }, `backfill ${outcome.status}: ${outcome.message}`);
    return true;
  }

  async function drain(): Promise<void> {
    try {
      while (!stopping && (await runOnce()));
    } catch (error) {
      // The database is unreachable, say: the next tick tries again.
      log.warn({ err: error }, 'backfill worker tick failed; it runs again later');
    }
  }

  function schedule(): void {
    if (stopping) return;
    timer = setTimeout(() => {
      inFlight = drain().finally(() => {
        inFlight = undefined;
        schedule();
      });
    }, options.intervalMs);
    timer.unref?.();
  }

  return {
    runOnce,
    start() {
      if (timer || inFlight) return;
      stopping = false;
      abort = new AbortController();
      schedule();
    },
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      abort.abort();
      await inFlight;
    },
  };
}
