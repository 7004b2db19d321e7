/**
 * Load shedding for the ingest handler. At most `concurrency` batches run at once and at most `queueLimit` wait;
 * past that a batch is refused at once with IngestOverloadedError (HTTP 503 with Retry-After) instead of queueing
 * without bound. Callers back off and try again: the stream runtime on the 503, the poll runner on the error.
 * One gate per core process, shared by both paths.
 */
import { recordIngestRefused } from '../metrics.ts';

export class IngestOverloadedError extends Error {
  constructor(readonly retryAfterMs: number) {
    super('the ingest handler is at capacity; try again shortly');
    this.name = 'IngestOverloadedError';
  }
}

export interface IngestGate {
  /** Runs `work` when a slot is free; throws IngestOverloadedError if too many are already waiting. */
  run<T>(work: () => Promise<T>): Promise<T>;
  readonly stats: { running: number; waiting: number; refused: number };
}

export function createIngestGate(options: { concurrency: number; queueLimit: number; retryAfterMs: number }): IngestGate {
  let running = 0;
  let refused = 0;
  const waiting: (() => void)[] = [];

  const release = () => {
    running -= 1;
    const next = waiting.shift();
    if (next) {
      running += 1;
      next();
    }
  };

  return {
    async run(work) {
      if (running >= options.concurrency) {
        if (waiting.length >= options.queueLimit) {
          refused += 1;
          recordIngestRefused();
          throw new IngestOverloadedError(options.retryAfterMs);
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        running += 1;
      }
      try {
        return await work();
      } finally {
        release();
      }
    },
    get stats() {
      return { running, waiting: waiting.length, refused };
    },
  };
}

/**
 * Runs `work` through `gate`; while ingest is at capacity, waits the refusal's Retry-After (with jitter: half to one
 * and a half times it) and tries again, until `signal` aborts: how the poll runner and the backfill runner ingest.
 */
export async function runWhenAdmitted<T>(
  gate: IngestGate,
  work: () => Promise<T>,
  wait: { signal: AbortSignal; random: () => number; sleep: (ms: number, signal: AbortSignal) => Promise<void> },
): Promise<T> {
  for (;;) {
    try {
      return await gate.run(work);
    } catch (error) {
      if (!(error instanceof IngestOverloadedError) || wait.signal.aborted) throw error;
      await wait.sleep(error.retryAfterMs * (0.5 + wait.random()), wait.signal);
    }
  }
}
