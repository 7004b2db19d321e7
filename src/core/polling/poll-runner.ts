/**
 * The workspace poll runner (DESIGN §5): for one workspace poll job, loads policy, cutover and poll connections
 * from SQL, runs each connection's provider task with a concurrency limit, and hands every page of canonical
 * updates to the ingest handler, with the connection's feed cursor committed in the same transaction as the data
 * it covers. Devices the provider reports but the workspace has not bound go through ingest too, and show up as
 * `unknown_device` rejections: the operator sees what is missing.
 *
 * Provider errors fall in a closed set and pick what happens next: `rate_limited` waits Retry-After, `transient`
 * and `malformed_response` back off with jitter, `auth` stops the connection until its credentials change,
 * `permanent` waits an hour. One failing connection never holds up the others. Every run is recorded.
 *
 * When the cutover leaves `core`, the workspace is owed one closing poll (registry/workspaces.ts `putCutover`): the
 * next job of it polls its connections from core's committed cursors under the generation before the change, so what
 * was observed up to the rollback lands as owned readings, and then core stops polling it (in `legacy`).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CanonicalUpdate } from '../../canonical/update.ts';
import { batchesWithinLimits } from '../../canonical/update.ts';
import type { Logger } from '../../logging.ts';
import type { PollAdapter, PollPage } from '../../providers/poll-adapter.ts';
import { optionsSchemaOf } from '../../providers/provider.ts';
import { isProviderError, type ProviderErrorClass } from '../../providers/provider-error.ts';
import type { Database } from '../db/database.ts';
import { ingestBatch } from '../ingest/ingest-batch.ts';
import { runWhenAdmitted, type IngestGate } from '../ingest/ingest-gate.ts';
import { recordPollRun } from '../metrics.ts';
import { keyFingerprint } from '../registry/credential-key.ts';
import { CredentialsUnreadableError, decryptCredentials } from '../registry/credentials-cipher.ts';
import { sleepUnlessAborted } from '../time.ts';
import type { WorkspacePollJob } from './job-queue.ts';
import {
  claimPollRun,
  closeAbandonedPollRuns,
  commitFeedCursor,
  listBoundDevices,
  loadPollPlan,
  recordPollOutcome,
  settleClosingPoll,
  type PollConnection,
  type WorkspacePollPlan,
  type RunTotals,
} from './poll-store.ts';

/**
 * Our own failures (a database error, a bug) are recorded apart from the provider's, and so are stored
 * credentials that cannot be decrypted (polling stops until they are entered again).
 */
export type PollErrorClass = ProviderErrorClass | 'internal' | 'credentials_unreadable';

export interface PollRunnerOptions {
  /** Connections of one workspace polled at the same time. */
  connectionConcurrency: number;
  /**
   * A workspace poll ends by this deadline, counted from the job's start: connections it did not reach wait for the
   * next poll (they go first then), and runs still going are stopped. Keep it under the job's expiry, so a live
   * holder is done before its job could be handed to another process.
   */
  runDeadlineMs: number;
  /** Wait out a Retry-After within the run when it is at most this long; longer ones end the run. */
  maxInlineRetryAfterMs: number;
  /** Retries within a run after a transient failure. */
  transientRetries: number;
  now?: () => number;
  random?: () => number;
  /** Names this process in poll run records; host:pid by default. */
  runnerId?: string;
}

export interface PollRunnerDeps {
  db: Database;
  /** The process's ingest gate: a poll backs off while ingest is at capacity. */
  ingestGate: IngestGate;
  secretKey: Buffer;
  logger: Logger;
  adapters: ReadonlyMap<string, PollAdapter>;
}

export interface PollRunner {
  runWorkspace(job: WorkspacePollJob): Promise<void>;
}

/** How old a run still marked running must be to count as abandoned: past its deadline by a minute. */
export function abandonedRunAfterMs(options: Pick<PollRunnerOptions, 'runDeadlineMs'>): number {
  return options.runDeadlineMs + 60_000;
}

/**
 * How long a run's claim on its connection lasts: a little past the deadline that stops the run, so a live run
 * always holds its connection to the end, and a dead process's connection is free by the time its job expires.
 */
export function claimMs(options: Pick<PollRunnerOptions, 'runDeadlineMs'>): number {
  return options.runDeadlineMs + 5000;
}

/** A connection not started this close to the deadline waits for the next poll rather than run for nothing. */
const minimumRunMs = 1000;

class CursorMovedError extends Error {
  constructor() {
    super('another poller moved this connection\'s feed cursor; this run stops without writing');
    this.name = 'CursorMovedError';
  }
}

class DeadlineError extends Error {}

/**
 * What the runs of one workspace poll send their pages under: the cutover generation ingest judges them by (for the
 * closing poll of a rollback from core, the one before the rollback), and whether their readings are the workspace's
 * own rather than kept for parity only.
 */
interface RunTerms {
  generation: number;
  owned: boolean;
  closing: boolean;
}

function runTerms(plan: WorkspacePollPlan): RunTerms {
  if (plan.closingGeneration !== null) return { generation: plan.closingGeneration, owned: true, closing: true };
  return { generation: plan.cutoverGeneration, owned: plan.cutover !== 'shadow', closing: false };
}

/**
 * The connections a workspace poll runs. Those due, normally. The closing poll of a rollback runs every one core
 * has a committed cursor of, whatever its backoff: it is the last chance to fetch what was observed up to the
 * rollback. A connection stopped until an operator acts (credentials refused or unreadable) is left out either way.
 */
function connectionsToPoll(plan: WorkspacePollPlan, terms: RunTerms, at: number): PollConnection[] {
  const stopped = (c: PollConnection) => c.authFailedAt !== null || c.credentialsUnreadableAt !== null;
  if (terms.closing) return plan.connections.filter((c) => c.cursorCommitted && !stopped(c));
  return plan.connections.filter(
    (c) => !stopped(c) && !(c.rateLimitedUntil && c.rateLimitedUntil.getTime() > at) && !(c.nextPollAt && c.nextPollAt.getTime() > at),
  );
}

/** When to poll a failing connection again, by error class and how many failures in a row. */
function nextAttempt(
  errorClass: PollErrorClass,
  failures: number,
  retryAfterMs: number | undefined,
  now: number,
  random: () => number,
): { nextPollAt: Date | null; rateLimitedUntil: Date | null; authFailed: boolean } {
  const jitter = 0.5 + random();
  switch (errorClass) {
    case 'auth':
      return { nextPollAt: null, rateLimitedUntil: null, authFailed: true };
    case 'credentials_unreadable':
      // Polling stops on the connection's mark until the credentials are entered again.
      return { nextPollAt: null, rateLimitedUntil: null, authFailed: false };
    case 'rate_limited':
      return { nextPollAt: null, rateLimitedUntil: new Date(now + (retryAfterMs ?? 60_000)), authFailed: false };
    case 'permanent':
      return { nextPollAt: new Date(now + 3600_000), rateLimitedUntil: null, authFailed: false };
    default: {
      // 15 s, 30 s, 1 min, 2 min ... capped at 15 min, each spread ±50 % so failing connections do not retry in step.
      const backoff = Math.min(15 * 60_000, 15_000 * 2 ** Math.max(0, failures - 1)) * jitter;
      return { nextPollAt: new Date(now + backoff), rateLimitedUntil: null, authFailed: false };
    }
  }
}

async function runWithConcurrency<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(lanes);
}


export function createPollRunner(deps: PollRunnerDeps, options: PollRunnerOptions): PollRunner {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sessions = new Map<string, Map<string, unknown>>();
  const runnerId = options.runnerId ?? `${hostname()}:${process.pid}`;
  const fingerprint = keyFingerprint(deps.secretKey);
  // Claims of this runner start with this; those of its runs still going are in `running`.
  const claimPrefix = `${runnerId}#${randomBytes(4).toString('hex')}/`;
  const running = new Set<string>();

  async function ingestPage(
    workspaceId: string,
    connection: PollConnection,
    page: PollPage,
    version: { value: number },
    totals: RunTotals & { shadowed: number },
    signal: AbortSignal,
    notes: string[],
    terms: RunTerms,
  ) {
    const receivedAt = new Date(now()).toISOString();
    const updates: CanonicalUpdate[] = page.devices.map((device) => ({
      workspaceId,
      provider: connection.provider,
      connectionId: connection.id,
      externalDeviceId: device.externalDeviceId,
      source: 'poll',
      receivedAt,
      readings: device.readings,
      ...(device.chargingSessions && device.chargingSessions.length > 0 ? { chargingSessions: device.chargingSessions } : {}),
    }));
    // Within the handler's limits; the cursor rides on the last batch, so a page without updates is one empty batch.
    const chunks = batchesWithinLimits(updates);
    if (chunks.length === 0) chunks.push([]);
    for (const [i, chunk] of chunks.entries()) {
      const last = i === chunks.length - 1;
      const commitCursor = async (tx: Parameters<typeof commitFeedCursor>[0]) => {
        if (!(await commitFeedCursor(tx, workspaceId, connection.id, version.value, page.cursor))) throw new CursorMovedError();
      };
      if (chunk.length === 0) {
        await deps.db.transaction(commitCursor);
      } else {
        const ingestOptions = { pollCutoverGeneration: terms.generation, ...(last ? { withinTransaction: commitCursor } : {}) };
        const outcome = await runWhenAdmitted(deps.ingestGate, () => ingestBatch(deps.db, chunk, ingestOptions), {
          signal,
          random,
          sleep: sleepUnlessAborted,
        });
        totals.accepted += outcome.counts.accepted;
        totals.late += outcome.counts.late;
        totals.duplicate += outcome.counts.duplicate;
        totals.rejected += outcome.counts.rejected;
        totals.shadowed += outcome.counts.shadowed;
      }
      if (last) version.value += 1;
    }
    totals.pages += 1;
    totals.requests += page.requests;
    totals.skipped += page.skipped ?? 0;
    if (page.notes) notes.push(...page.notes);
  }

  /** Polls one connection of the job's workspace; false when another run holds it (and it was left to that run). */
  async function pollConnection(job: WorkspacePollJob, terms: RunTerms, connection: PollConnection, deadlineAt: number): Promise<boolean> {
    const { workspaceId } = job;
    const started = now();
    const log = deps.logger.child({ 'fleetwire.workspace.id': workspaceId, 'fleetwire.connection.id': connection.id, 'fleetwire.provider': connection.provider });
    const claim = `${claimPrefix}${randomBytes(4).toString('hex')}`;
    const runId = await claimPollRun(deps.db, {
      workspaceId,
      connectionId: connection.id,
      provider: connection.provider,
      eventId: job.eventId,
      runner: runnerId,
      claim,
      claimMs: claimMs(options),
      mine: claimPrefix,
      running: [...running],
    });
    if (runId === null) {
      log.debug('another run is polling this connection; left to it');
      return false;
    }
    running.add(claim);
    try {
      await runClaimed(job, terms, connection, deadlineAt, runId, claim, started, log);
    } finally {
      running.delete(claim);
    }
    return true;
  }

  async function runClaimed(
    job: WorkspacePollJob,
    terms: RunTerms,
    connection: PollConnection,
    deadlineAt: number,
    runId: number,
    claim: string,
    started: number,
    log: Logger,
  ): Promise<void> {
    const { workspaceId } = job;
    const totals = { requests: 0, pages: 0, skipped: 0, accepted: 0, late: 0, duplicate: 0, rejected: 0, shadowed: 0 };
    const notes: string[] = terms.closing
      ? [`the closing poll of a rollback from core: what was observed up to the rollback, read from core's committed cursor and kept as owned readings (cutover generation ${terms.generation})`]
      : [];
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DeadlineError('run deadline')), Math.max(0, deadlineAt - now()));
    let failure: { errorClass: PollErrorClass; message: string; retryAfterMs?: number } | undefined;
    try {
      const adapter = deps.adapters.get(connection.provider);
      if (!adapter) throw Object.assign(new Error(`no poll adapter for provider ${connection.provider}`), { pollClass: 'permanent' as const });
      let credentials: Record<string, unknown>;
      try {
        credentials = decryptCredentials(deps.secretKey, { workspaceId, connectionId: connection.id }, connection.credentialsCiphertext);
      } catch (error) {
        if (!(error instanceof CredentialsUnreadableError)) throw error;
        throw Object.assign(new Error(`${error.message}; enter the connection's credentials again`), { pollClass: 'credentials_unreadable' as const });
      }
      const parsed = adapter.contract.credentials.safeParse(credentials);
      if (!parsed.success) throw Object.assign(new Error('the stored credentials do not fit this provider'), { pollClass: 'permanent' as const });
      const parsedOptions = optionsSchemaOf(adapter.contract).safeParse(connection.options ?? {});
      if (!parsedOptions.success) throw Object.assign(new Error("the connection's options do not fit this provider; set them again"), { pollClass: 'permanent' as const });
      const boundDevices = await listBoundDevices(deps.db, workspaceId, connection.id);
      const session = sessions.get(connection.id) ?? new Map<string, unknown>();
      sessions.set(connection.id, session);

      const version = { value: connection.cursorVersion };
      let cursor = connection.cursor;
      let transientLeft = options.transientRetries;
      let rateLimitedLeft = 3;
      for (;;) {
        try {
          const context = {
            baseUrl: connection.baseUrl,
            credentials: parsed.data,
            options: parsedOptions.data,
            lastSuccessAt: connection.lastSuccessAt?.toISOString() ?? null,
            cursor,
            boundDevices,
            signal: deadline.signal,
            session,
          };
          for await (const page of adapter.poll(context)) {
            await ingestPage(workspaceId, connection, page, version, totals, deadline.signal, notes, terms);
            cursor = page.cursor;
          }
          break;
        } catch (error) {
          if (deadline.signal.aborted || !isProviderError(error)) throw error;
          const remaining = deadlineAt - now();
          if (error.errorClass === 'rate_limited' && rateLimitedLeft > 0 && (error.retryAfterMs ?? Infinity) <= Math.min(options.maxInlineRetryAfterMs, remaining - 1000)) {
            rateLimitedLeft -= 1;
            log.debug({ 'fleetwire.retry_after_ms': error.retryAfterMs }, 'rate limited; waiting within the run');
            await sleepUnlessAborted(error.retryAfterMs!, deadline.signal);
            continue;
          }
          if ((error.errorClass === 'transient' || error.errorClass === 'malformed_response') && transientLeft > 0) {
            const wait = 500 * 2 ** (options.transientRetries - transientLeft) * (0.5 + random());
            if (wait < remaining - 1000) {
              transientLeft -= 1;
              await sleepUnlessAborted(wait, deadline.signal);
              continue;
            }
          }
          throw error;
        }
      }
    } catch (error) {
      if (deadline.signal.aborted) {
        failure = { errorClass: 'transient', message: `the poll reached its ${options.runDeadlineMs / 1000} s deadline after ${totals.pages} pages; the rest follows on the next poll` };
      } else if (isProviderError(error)) {
        failure = { errorClass: error.errorClass, message: error.message, retryAfterMs: error.retryAfterMs };
      } else if (error instanceof CursorMovedError) {
        failure = { errorClass: 'internal', message: error.message };
      } else {
        const pollClass = (error as { pollClass?: PollErrorClass }).pollClass;
        failure = { errorClass: pollClass ?? 'internal', message: (error as Error).message ?? String(error) };
        if (!pollClass) log.error({ err: error }, 'poll failed on our side');
      }
    } finally {
      clearTimeout(timer);
    }

    const run = { workspaceId, connectionId: connection.id, runId, claim };
    if (failure) {
      const message = failure.message.slice(0, 500);
      const next = nextAttempt(failure.errorClass, connection.consecutiveFailures + 1, failure.retryAfterMs, now(), random);
      await recordPollOutcome(deps.db, run, { status: 'failed', errorClass: failure.errorClass, message, ...next, keyFingerprint: fingerprint }, totals, notes);
      log.warn({ 'error.type': failure.errorClass, 'fleetwire.poll.pages': totals.pages, 'fleetwire.poll.next_at': next.nextPollAt ?? next.rateLimitedUntil }, `poll failed: ${message}`);
    } else {
      if (totals.shadowed > 0) notes.push(`${totals.shadowed} readings kept for parity only: the workspace is in shadow, the legacy poller owns its snapshot`);
      await recordPollOutcome(deps.db, run, { status: 'succeeded', confirms: terms.owned }, totals, notes);
      log.info({ 'fleetwire.poll.pages': totals.pages, 'fleetwire.poll.requests': totals.requests, 'fleetwire.poll.accepted': totals.accepted, 'fleetwire.poll.rejected': totals.rejected }, 'poll succeeded');
    }
    recordPollRun(connection.provider, failure ? 'failed' : 'succeeded', failure?.errorClass ?? '', (now() - started) / 1000, totals.requests);
  }

  return {
    async runWorkspace(job) {
      // One deadline for the whole job, below its expiry: no connection of it is still being polled when the queue
      // could hand the job to another process.
      const deadlineAt = now() + options.runDeadlineMs;
      const plan = await loadPollPlan(deps.db, job.workspaceId);
      // The workspace may have changed since it was enqueued. Core polls a workspace it owns, and one it shadows; and
      // one it owes the closing poll of a rollback, whatever its mode now.
      if (!plan || !plan.enabled) return;
      const terms = runTerms(plan);
      if (plan.cutover === 'legacy' && !terms.closing) return;
      // Runs of this workspace whose outcome was never recorded are closed before new ones start. Only one runner
      // polls a workspace at a time, and no run outlives its deadline by a minute.
      const closed = await closeAbandonedPollRuns(deps.db, abandonedRunAfterMs(options), job.workspaceId);
      if (closed > 0) deps.logger.warn({ 'fleetwire.workspace.id': job.workspaceId, 'fleetwire.poll.abandoned_runs': closed }, 'closed poll runs whose outcome was never recorded');
      const due = connectionsToPoll(plan, terms, now());
      let unreached = 0;
      let ran = 0;
      await runWithConcurrency(due, options.connectionConcurrency, async (connection) => {
        if (deadlineAt - now() < minimumRunMs) {
          unreached += 1;
          return;
        }
        try {
          if (await pollConnection(job, terms, connection, deadlineAt)) ran += 1;
        } catch (error) {
          // Recording the run failed (the database is down): the next poll starts from the committed cursor.
          deps.logger.error({ err: error, 'fleetwire.connection.id': connection.id }, 'poll run could not be recorded');
        }
      });
      // The closing poll is settled once each of its connections had its run, failed ones included (what a failed
      // run could not fetch is a backfill's: POST .../connections/{id}/backfill). When one was not reached, was held by
      // another run or could not be recorded, the next job runs the closing poll again, from the committed cursors.
      if (terms.closing && ran === due.length) await settleClosingPoll(deps.db, job.workspaceId, terms.generation);
      if (unreached > 0) {
        deps.logger.warn({ 'fleetwire.workspace.id': job.workspaceId, 'fleetwire.poll.unreached': unreached }, 'the workspace poll reached its deadline before every due connection; they go first next time');
      }
    },
  };
}
