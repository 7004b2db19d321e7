/**
 * The embedded scheduler: on one machine (`FLEETWIRE_SCHEDULER=embedded`) it builds the same EventBridge envelope
 * an EventBridge Scheduler rule would send, every few seconds, and hands it to the scheduled event processor
 * in-process. `start` and `stop` are idempotent; a failing tick is reported and the ticker keeps ticking.
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
}): Ticker {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    // A tick that is still running (a slow database) is not stacked on.
    if (running) return;
    running = options
      .onTick(tickerEvent(new Date()))
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
