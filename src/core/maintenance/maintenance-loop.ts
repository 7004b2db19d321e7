/**
 * Runs maintenance (retention) in the background: first a minute after start, then every interval. Never throws
 * out of its timer; `start` and `stop` are idempotent, and `stop` waits for a run in progress.
 */
export interface MaintenanceLoop {
  start(): void;
  stop(): Promise<void>;
}

export function createMaintenanceLoop(options: { intervalMs: number; run: () => Promise<void>; onError: (error: unknown) => void; firstAfterMs?: number }): MaintenanceLoop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const runOnce = () => {
    if (running || stopped) return;
    running = options
      .run()
      .catch(options.onError)
      .finally(() => {
        running = undefined;
      });
  };
  return {
    start() {
      if (timer || options.intervalMs <= 0) return;
      timer = setTimeout(function next() {
        runOnce();
        timer = setTimeout(next, options.intervalMs);
        timer.unref();
      }, options.firstAfterMs ?? 60_000);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
