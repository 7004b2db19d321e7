/**
 * Delivery to core (DESIGN §7): coalesced updates wait in a bounded buffer and go to core's ingest endpoint in
 * batches, every `flushMs` or as soon as a batch is full, over keep-alive HTTP. While core is down or answers 5xx
 * (or 503 with Retry-After, under overload) the same batch is retried with capped backoff and jitter, and new
 * updates keep buffering. When the buffer is full the oldest updates are dropped and counted. Every reading is
 * delivered, still buffered, or counted as dropped: none vanishes silently.
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
  buffered: number;
}

export class DeliveryPipeline {
  private readonly queue: CanonicalUpdate[] = [];
  private queueHead = 0;
  private queuedReadings = 0;
  private inFlight: CanonicalUpdate[] = [];
  private inFlightReadings = 0;
  private readonly byConnection = new Map<string, Counters>();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private stopping = false;
  private failures = 0;
  private retryAt = 0;
  private lastErrorLogAt = 0;
  /** Per reading status of core's answers (accepted, late, duplicate, rejected). */
  readonly answered: Record<string, number> = {};
  lastError: string | null = null;

  constructor(
    private readonly client: CoreClient,
    private readonly options: DeliveryOptions,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.options.flushMs);
    this.timer.unref();
  }

  private counters(connectionId: string): Counters {
    let counters = this.byConnection.get(connectionId);
    if (!counters) {
      counters = { delivered: 0, dropped: 0, buffered: 0 };
      this.byConnection.set(connectionId, counters);
    }
    return counters;
  }

  statsFor(connectionId: string): Counters {
    return { ...this.counters(connectionId) };
  }

  get totals(): Counters & { queued: number; inFlight: number } {
    let delivered = 0;
    let dropped = 0;
    for (const c of this.byConnection.values()) {
      delivered += c.delivered;
      dropped += c.dropped;
    }
    return { delivered, dropped, buffered: this.queuedReadings + this.inFlightReadings, queued: this.queue.length - this.queueHead, inFlight: this.inFlight.length };
  }

  enqueue(update: CanonicalUpdate): void {
    const n = update.readings.length;
    this.queue.push(update);
    this.queuedReadings += n;
    this.counters(update.connectionId).buffered += n;
    // Over the bound: the oldest queued updates go (an in-flight batch is already on its way).
    while (this.queuedReadings + this.inFlightReadings > this.options.bufferReadings && this.queueHead < this.queue.length) {
      const oldest = this.queue[this.queueHead]!;
      this.queueHead += 1;
      this.queuedReadings -= oldest.readings.length;
      this.leaveBuffer(oldest, 'dropped');
    }
    this.compact();
    if (this.queue.length - this.queueHead >= this.options.maxBatchUpdates || this.queuedReadings >= this.options.maxBatchReadings) this.kick();
  }

  /** An update's readings leave the buffer, counted as delivered or dropped. */
  private leaveBuffer(update: CanonicalUpdate, as: 'delivered' | 'dropped'): void {
    const counters = this.counters(update.connectionId);
    counters.buffered -= update.readings.length;
    counters[as] += update.readings.length;
  }

  /** The in-flight batch is done with, its readings delivered or dropped. */
  private settleInFlight(as: 'delivered' | 'dropped'): void {
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

  /** Starts a send if none is running and there is something to send (and no backoff pending). */
  private kick(): void {
    if (this.sending || Date.now() < this.retryAt) return;
    if (this.inFlight.length === 0 && this.queue.length === this.queueHead) return;
    this.sending = this.send().finally(() => {
      this.sending = undefined;
      // More waiting, and core is answering: go on at once rather than at the next tick.
      if (this.failures === 0 && this.queue.length - this.queueHead > 0 && !this.stopping) this.kick();
    });
  }

  private takeBatch(): void {
    let readings = 0;
    while (this.queueHead < this.queue.length && this.inFlight.length < this.options.maxBatchUpdates) {
      const next = this.queue[this.queueHead]!;
      if (this.inFlight.length > 0 && readings + next.readings.length > this.options.maxBatchReadings) break;
      this.inFlight.push(next);
      readings += next.readings.length;
      this.queueHead += 1;
    }
    this.queuedReadings -= readings;
    this.inFlightReadings = readings;
    this.compact();
  }

  private async send(): Promise<void> {
    if (this.inFlight.length === 0) this.takeBatch();
    if (this.inFlight.length === 0) return;
    try {
      const answer = await this.client.ingest(this.inFlight);
      for (const result of answer.results) for (const reading of result.readings) this.answered[reading.status] = (this.answered[reading.status] ?? 0) + 1;
      this.settleInFlight('delivered');
      this.failures = 0;
      this.retryAt = 0;
      this.lastError = null;
    } catch (error) {
      const retryable = !(error instanceof CoreAnswerError) || error.retryable;
      this.lastError = (error as Error).message;
      if (!retryable) {
        // Core refused the batch itself (a request error): it would refuse it again. Counted, logged, not retried.
        this.logger.error({ err: error, 'fleetwire.stream.batch_updates': this.inFlight.length }, 'core refused a batch; its readings are counted as dropped');
        this.settleInFlight('dropped');
        return;
      }
      this.failures += 1;
      const backoff = Math.min(this.options.retryCapMs, this.options.retryBaseMs * 2 ** (this.failures - 1)) * (0.5 + this.random());
      const wait = Math.max(backoff, error instanceof CoreAnswerError ? (error.retryAfterMs ?? 0) : 0);
      this.retryAt = Date.now() + wait;
      if (Date.now() - this.lastErrorLogAt > 10_000) {
        this.lastErrorLogAt = Date.now();
        this.logger.warn({ 'fleetwire.stream.buffered': this.totals.buffered, 'fleetwire.stream.retry_in_ms': Math.round(wait) }, `delivery to core failed, retrying: ${this.lastError}`);
      }
    }
  }

  /** Stops the timer and tries, for at most `drainMs`, to deliver what is buffered. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && (this.inFlight.length > 0 || this.queue.length > this.queueHead)) {
      if (this.sending) await this.sending;
      else if (Date.now() >= this.retryAt) await (this.sending = this.send().finally(() => (this.sending = undefined)));
      else await new Promise((resolve) => setTimeout(resolve, Math.min(100, this.retryAt - Date.now())));
    }
    if (this.sending) await this.sending;
  }
}
