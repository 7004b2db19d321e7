/**
 * Delivery to core (DESIGN §7): coalesced updates wait in a bounded buffer and go to core's ingest endpoint in
 * batches, every `flushMs` or as soon as a batch is full, over keep-alive HTTP, in the name of this stream process
 * (core refuses updates of connections it no longer holds a lease on).
 *
 * What core answers decides what happens to a batch, so that nothing can wedge the queue:
 * - core down, overloaded or failing for a while (network errors, 429, 408, 502-504, 503 with Retry-After): the same
 *   batch is retried with capped backoff and jitter while new updates keep buffering; when the buffer is full the
 *   oldest updates are dropped and counted;
 * - core refuses the batch itself (a 4xx problem other than 429), or keeps answering 500 for the same batch: the
 *   batch is split in halves and each half sent on its own, again and again, until the update core refuses is alone;
 *   that one is dead-lettered (counted per connection, kept in a small ring, logged) and the rest goes on, in order.
 *   A lone update answered 500 is dead-lettered only if core took other batches meanwhile; when core fails every
 *   batch, that is an outage, and it is waited out;
 * - core refuses the service token (401, 403): nothing is sent again and `onFatal` is told (the process stops with
 *   a message saying so: no retry can fix a wrong token).
 * Every reading taken in is delivered, dead-lettered, dropped, or still buffered: none vanishes silently.
 */
import type { CanonicalUpdate } from '../canonical/update.ts';
import type { Logger } from '../logging.ts';
import { CoreAnswerError, type CoreClient } from './core-client.ts';

export interface DeliveryOptions {
  flushMs: number;
  maxBatchUpdates: number;
  maxBatchReadings: number;
  /** Readings the buffer holds at most (queued and in flight). */
  bufferReadings: number;
  retryBaseMs: number;
  retryCapMs: number;
}

interface Counters {
  delivered: number;
  dropped: number;
  deadLettered: number;
  buffered: number;
}

/** An update core refused on its own, after its batch was split down to it. */
export interface DeadLetter {
  connectionId: string;
  externalDeviceId: string;
  readings: number;
  status: number;
  code: string;
  at: number;
}

/** Answers of 500 to one batch in a row, while core is up, before the batch is taken for poisoned and split. */
const internalErrorsBeforeSplit = 3;
/** Dead letters kept for inspection (the newest). */
const deadLetterRing = 100;

export class DeliveryPipeline {
  private readonly queue: CanonicalUpdate[] = [];
  private queueHead = 0;
  private queuedReadings = 0;
  private inFlight: CanonicalUpdate[] = [];
  private inFlightReadings = 0;
  /** Halves of a split batch still to send, in order, before anything from the queue. */
  private readonly splits: CanonicalUpdate[][] = [];
  private readonly byConnection = new Map<string, Counters>();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private stopping = false;
  private fatal: CoreAnswerError | undefined;
  private failures = 0;
  private internalErrors = 0;
  /** When the isolation of a batch answered with 500 began: a lone update is dead-lettered only if others got through since. */
  private isolatingSince: number | null = null;
  private retryAt = 0;
  private lastErrorLogAt = 0;
  private lastDeadLetterLogAt = 0;
  /** Per reading status of core's answers (accepted, late, duplicate, rejected). */
  readonly answered: Record<string, number> = {};
  readonly deadLetters: DeadLetter[] = [];
  lastError: string | null = null;
  /** When core last answered a batch with success; when the current run of failures began. */
  lastDeliveredAt: number | null = null;
  failingSince: number | null = null;

  constructor(
    private readonly client: CoreClient,
    private readonly options: DeliveryOptions,
    private readonly logger: Logger,
    private readonly hooks: { holder?: string; onFatal?: (error: CoreAnswerError) => void; random?: () => number } = {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.options.flushMs);
    this.timer.unref();
  }

  private counters(connectionId: string): Counters {
    let counters = this.byConnection.get(connectionId);
    if (!counters) {
      counters = { delivered: 0, dropped: 0, deadLettered: 0, buffered: 0 };
      this.byConnection.set(connectionId, counters);
    }
    return counters;
  }

  statsFor(connectionId: string): Counters {
    return { ...this.counters(connectionId) };
  }

  /** Core refused the service token: delivery has stopped for good. */
  get refusedToken(): CoreAnswerError | undefined {
    return this.fatal;
  }

  get totals(): Counters & { queued: number; inFlight: number } {
    const sum = { delivered: 0, dropped: 0, deadLettered: 0 };
    for (const c of this.byConnection.values()) {
      sum.delivered += c.delivered;
      sum.dropped += c.dropped;
      sum.deadLettered += c.deadLettered;
    }
    const splitUpdates = this.splits.reduce((n, s) => n + s.length, 0);
    return {
      ...sum,
      buffered: this.queuedReadings + this.inFlightReadings,
      queued: this.queue.length - this.queueHead + splitUpdates,
      inFlight: this.inFlight.length,
    };
  }

  enqueue(update: CanonicalUpdate): void {
    const n = update.readings.length;
    this.queue.push(update);
    this.queuedReadings += n;
    this.counters(update.connectionId).buffered += n;
    // Over the bound: the oldest queued updates go (an in-flight batch and split halves are already on their way).
    while (this.queuedReadings + this.inFlightReadings > this.options.bufferReadings && this.queueHead < this.queue.length) {
      const oldest = this.queue[this.queueHead]!;
      this.queueHead += 1;
      this.queuedReadings -= oldest.readings.length;
      this.leaveBuffer(oldest, 'dropped');
    }
    this.compact();
    if (this.queue.length - this.queueHead >= this.options.maxBatchUpdates || this.queuedReadings >= this.options.maxBatchReadings) this.kick();
  }

  /** An update's readings leave the buffer, counted as delivered, dropped or dead-lettered. */
  private leaveBuffer(update: CanonicalUpdate, as: 'delivered' | 'dropped' | 'deadLettered'): void {
    const counters = this.counters(update.connectionId);
    counters.buffered -= update.readings.length;
    counters[as] += update.readings.length;
  }

  /** The in-flight batch is done with. */
  private settleInFlight(as: 'delivered' | 'dropped' | 'deadLettered'): void {
    for (const update of this.inFlight) this.leaveBuffer(update, as);
    this.inFlight = [];
    this.inFlightReadings = 0;
  }

  private compact(): void {
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private hasWork(): boolean {
    return this.inFlight.length > 0 || this.splits.length > 0 || this.queue.length > this.queueHead;
  }

  /** Starts a send if none is running and there is something to send (and no backoff pending). */
  private kick(): void {
    if (this.sending || this.fatal || Date.now() < this.retryAt || !this.hasWork()) return;
    this.sending = this.send().finally(() => {
      this.sending = undefined;
      // More waiting, and core is answering: go on at once rather than at the next tick.
      if (this.failures === 0 && this.hasWork() && !this.stopping) this.kick();
    });
  }

  private setInFlight(batch: CanonicalUpdate[]): void {
    this.inFlight = batch;
    this.inFlightReadings = batch.reduce((n, u) => n + u.readings.length, 0);
  }

  private takeBatch(): void {
    const split = this.splits.shift();
    if (split) {
      this.queuedReadings -= split.reduce((n, u) => n + u.readings.length, 0);
      this.setInFlight(split);
      return;
    }
    const batch: CanonicalUpdate[] = [];
    let readings = 0;
    while (this.queueHead < this.queue.length && batch.length < this.options.maxBatchUpdates) {
      const next = this.queue[this.queueHead]!;
      if (batch.length > 0 && readings + next.readings.length > this.options.maxBatchReadings) break;
      batch.push(next);
      readings += next.readings.length;
      this.queueHead += 1;
    }
    this.queuedReadings -= readings;
    this.setInFlight(batch);
    this.compact();
  }

  private async send(): Promise<void> {
    if (this.inFlight.length === 0) this.takeBatch();
    if (this.inFlight.length === 0) return;
    try {
      const answer = await this.client.ingest(this.inFlight, this.hooks.holder);
      for (const result of answer.results) for (const reading of result.readings) this.answered[reading.status] = (this.answered[reading.status] ?? 0) + 1;
      this.settleInFlight('delivered');
      this.failures = 0;
      this.internalErrors = 0;
      if (this.splits.length === 0) this.isolatingSince = null;
      this.retryAt = 0;
      this.lastError = null;
      this.lastDeliveredAt = Date.now();
      this.failingSince = null;
    } catch (error) {
      this.lastError = (error as Error).message;
      this.failingSince ??= Date.now();
      const answer = error instanceof CoreAnswerError ? error : undefined;
      if (answer?.kind === 'unauthorized') {
        this.fatal = answer;
        this.logger.error({ 'http.response.status_code': answer.status }, `core refused the service token (${answer.status}); delivery stopped`);
        this.hooks.onFatal?.(answer);
        return;
      }
      if (answer && answer.status === 500) this.internalErrors += 1;
      const poisoned =
        answer?.kind === 'refused' ||
        (answer?.status === 500 &&
          this.internalErrors >= internalErrorsBeforeSplit &&
          // A lone update that keeps failing is only taken for the cause once core took something else meanwhile;
          // a core failing every batch (its database gone, say) is waited out like any outage.
          (this.inFlight.length > 1 || (this.isolatingSince !== null && (this.lastDeliveredAt ?? 0) > this.isolatingSince)));
      if (answer && poisoned) {
        // Core answers, but not to this batch: find the update it will not take rather than retry the lot.
        this.internalErrors = 0;
        this.failures = 0;
        this.retryAt = 0;
        if (answer.status === 500) this.isolatingSince ??= Date.now();
        this.isolate(answer);
        return;
      }
      this.failures += 1;
      const backoff = Math.min(this.options.retryCapMs, this.options.retryBaseMs * 2 ** (this.failures - 1)) * (0.5 + (this.hooks.random ?? Math.random)());
      const wait = Math.max(backoff, answer?.retryAfterMs ?? 0);
      this.retryAt = Date.now() + wait;
      if (Date.now() - this.lastErrorLogAt > 10_000) {
        this.lastErrorLogAt = Date.now();
        this.logger.warn({ 'fleetwire.stream.buffered': this.totals.buffered, 'fleetwire.stream.retry_in_ms': Math.round(wait) }, `delivery to core failed, retrying: ${this.lastError}`);
      }
    }
  }

  /** Splits the refused in-flight batch in halves (the second waits its turn), or dead-letters it when it is one. */
  private isolate(answer: CoreAnswerError): void {
    if (this.inFlight.length > 1) {
      const half = Math.ceil(this.inFlight.length / 2);
      const rest = this.inFlight.slice(half);
      this.splits.unshift(rest);
      this.queuedReadings += rest.reduce((n, u) => n + u.readings.length, 0);
      this.setInFlight(this.inFlight.slice(0, half));
      return;
    }
    const [update] = this.inFlight;
    if (!update) return;
    const letter: DeadLetter = {
      connectionId: update.connectionId,
      externalDeviceId: update.externalDeviceId,
      readings: update.readings.length,
      status: answer.status,
      code: answer.code,
      at: Date.now(),
    };
    this.deadLetters.push(letter);
    if (this.deadLetters.length > deadLetterRing) this.deadLetters.shift();
    this.settleInFlight('deadLettered');
    this.failingSince = null;
    if (Date.now() - this.lastDeadLetterLogAt > 10_000) {
      this.lastDeadLetterLogAt = Date.now();
      this.logger.error(
        { 'fleetwire.connection.id': letter.connectionId, 'http.response.status_code': letter.status, 'error.type': letter.code, 'fleetwire.stream.dead_lettered': this.totals.deadLettered },
        `core refused an update on its own (${letter.status} ${letter.code}); it is dead-lettered and delivery goes on`,
      );
    }
  }

  /** Stops the timer and tries, for at most `drainMs`, to deliver what is buffered. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && this.hasWork() && !this.fatal) {
      if (this.sending) await this.sending;
      else if (Date.now() >= this.retryAt) await (this.sending = this.send().finally(() => (this.sending = undefined)));
      else await new Promise((resolve) => setTimeout(resolve, Math.min(100, this.retryAt - Date.now())));
    }
    if (this.sending) await this.sending;
  }
}
