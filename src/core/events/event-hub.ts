/**
 * A core process's view of the event log: it runs the sequencer every `intervalMs` (one process at a time gets to;
 * the others read the head it moved), and tells its listeners (SSE streams, webhook and NATS publishers) when the
 * head advances. Nothing here holds events: listeners read them from the log by position.
 */
import type { Logger } from '../../logging.ts';
import type { Database } from '../db/database.ts';
import { eventLogHead, sequenceEvents } from './event-log.ts';

export interface EventHub {
  /** The last position known to be committed in this process. */
  head(): number;
  /** Calls `listener` each time the head advances; answers the function that stops it. */
  onAdvance(listener: (head: number) => void): () => void;
  /** Called when the process stops: long-lived readers (SSE) end their streams. */
  onStop(listener: () => void): () => void;
  /** Runs the sequencer now rather than at the next interval (a test, or a unit of work that just committed). */
  flush(): Promise<number>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface EventHubOptions {
  intervalMs?: number;
  logger?: Logger;
}

export function createEventHub(db: Database, options: EventHubOptions = {}): EventHub {
  const intervalMs = options.intervalMs ?? 200;
  const advance = new Set<(head: number) => void>();
  const stops = new Set<() => void>();
  let head = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;
  let lastErrorLogAt = 0;

  const publish = (next: number) => {
    if (next <= head) return;
    head = next;
    for (const listener of advance) {
      try {
        listener(head);
      } catch (error) {
        options.logger?.warn({ err: error }, 'event listener failed');
      }
    }
  };

  const round = async (): Promise<number> => {
    for (;;) {
      const result = await sequenceEvents(db);
      if (!result) {
        publish(await eventLogHead(db));
        return head;
      }
      publish(result.head);
      // A full round means more may be waiting.
      if (result.sequenced < 5000 || stopped) return head;
    }
  };

  let queued: Promise<number> | undefined;
  /**
   * A round already under way may have read the log before the caller's commit, so a flush during one waits for it
   * and then runs one more (shared by every caller that asked meanwhile): what committed before `flush()` was called
   * has its position when it resolves.
   */
  const flush = (): Promise<number> => {
    if (!running) {
      running = round().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued ??= running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return flush();
      });
    return queued;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      flush().then(schedule, (error: unknown) => {
        if (!stopped && Date.now() - lastErrorLogAt > 60_000) {
          lastErrorLogAt = Date.now();
          options.logger?.warn({ err: error }, 'event sequencer failed; it tries again');
        }
        schedule();
      });
    }, intervalMs);
    timer.unref();
  };

  return {
    head: () => head,
    onAdvance(listener) {
      advance.add(listener);
      return () => advance.delete(listener);
    },
    onStop(listener) {
      stops.add(listener);
      return () => stops.delete(listener);
    },
    flush,
    async start() {
      head = await eventLogHead(db);
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      for (const listener of stops) listener();
      stops.clear();
      advance.clear();
      await running?.catch(() => undefined);
    },
  };
}
