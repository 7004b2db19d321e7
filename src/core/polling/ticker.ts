/**
 * The embedded scheduler: on one machine (`FLEETWIRE_SCHEDULER=embedded`) it builds the same EventBridge envelope
 * an EventBridge Scheduler rule would send, every few seconds, and hands it to the scheduled event processor
 * in-process. `start` and `stop` are idempotent; a failing tick is reported and the ticker keeps ticking. Each tick
 * reaches the scheduled event processor, which records it as the workspaces' last scheduled event: a ticker that
 * stopped (or a process that no longer runs one) shows in health as `scheduler_silent`.
 */
import { randomUUID } from 'node:crypto';
import type { ScheduledEvent } from './scheduled-events.ts';

export interface Ticker {
  start(): void;
  stop(): Promise<void>;
}

function tickerEvent(at: Date): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'fleetwire.ticker',
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    resources: [],
    detail: {},
  };
}

export function createTicker(options: {
  intervalMs: number;
  onTick: (event: ScheduledEvent) => Promise<void>;
  onError: (error: unknown) => void;
  /** The clock the envelope's time is taken from; the wall clock unless a test injects one. */
  clock?: () => number;
}): Ticker {
  const clock = options.clock ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    // A tick that is still running (a slow database) is not stacked on.
    if (running) return;
    running = options
      .onTick(tickerEvent(new Date(clock())))
      .catch(options.onError)
      .finally(() => {
        running = undefined;
      });
  };
  return {
    start() {
      if (timer) return;
      timer = setInterval(tick, options.intervalMs);
      timer.unref();
      tick();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
