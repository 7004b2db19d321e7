/**
 * A core process's view of the event log: it reads the log's head every `intervalMs` (every event at or below it has
 * committed: positions are given in commit order as events are written) and tells its listeners (SSE streams,
 * webhook and NATS publishers) when it advances. Nothing here holds events: listeners read them from the log by
 * position.
 */
import type { Logger } from '../../logging.ts';
import type { Database } from '../db/database.ts';
import { eventLogHead } from './event-log.ts';

export interface EventHub {
  /** The last position known to be committed in this process. */
  head(): number;
  /** Calls `listener` each time the head advances; answers the function that stops it. */
  onAdvance(listener: (head: number) => void): () => void;
  /** Called when the process stops: long-lived readers (SSE) end their streams. */
  onStop(listener: () => void): () => void;
  /** Reads the head now rather than at the next interval (a test, or a unit of work that just committed). */
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
    publish(await eventLogHead(db));
    return head;
  };

  let queued: Promise<number> | undefined;
  /**
   * A read already under way may have begun before the caller's commit, so a flush during one waits for it and then
   * reads again (once for every caller that asked meanwhile): what committed before `flush()` was called is at or
   * below the head when it resolves.
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
          options.logger?.warn({ err: error }, 'reading the event log head failed; it tries again');
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
