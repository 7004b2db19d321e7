/**
 * The pace of `bench:stream`'s feeds: each of `count` devices sends once a second for `seconds` seconds, device i
 * at `i / count` of every second, so a feed's load is spread evenly over the second rather than sent in one burst.
 * Used by the feed processes (bench/stream-tesla.ts, bench/stream-traccar.ts); the feeds record when each message
 * really left, so a feed that falls behind its schedule does not make the latency look better.
 */
export interface FeedPace {
  /** Resolves once every message was sent, or the pace was stopped. */
  done: Promise<void>;
  stop(): void;
}

/** Messages due every tick of the pacing timer at most are sent in that tick; a late tick sends all that are due. */
const tickMs = 5;

export function paceFeed(count: number, seconds: number, startMs: number, send: (device: number, second: number) => void): FeedPace {
  const total = count * seconds;
  const dueAt = (k: number) => startMs + Math.floor(k / count) * 1000 + ((k % count) * 1000) / count;
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const tick = () => {
    const now = Date.now();
    while (next < total && dueAt(next) <= now) {
      send(next % count, Math.floor(next / count));
      next += 1;
    }
    if (next >= total) finish();
    else timer = setTimeout(tick, Math.max(0, Math.min(tickMs, dueAt(next) - Date.now())));
  };
  timer = setTimeout(tick, Math.max(0, startMs - Date.now()));
  return {
    done,
    stop() {
      clearTimeout(timer);
      finish();
    },
  };
}

/** What the parent tells a feed process: start the pace at `startMs`, or stop now. */
export type FeedCommand = { start: { startMs: number; seconds: number } } | { stop: true };

/** What a feed process tells its parent: it is ready (its URL), a client connected, the load is done. */
export type FeedReport =
  | { ready: { url: string } }
  | { connected: true }
  | { done: { sent: number; lateMs: number; publishedAtMs?: number[] } };

/** VIN i of the bench's Tesla fleet: 17 characters, as the VIN check and the bindings take them. */
export const benchVin = (i: number) => `5YJ3E1EA1KF${String(i).padStart(6, '0')}`;

/** Traccar device i of the bench: its numeric id on the server, and the uniqueId (an IMEI's shape) it is bound by. */
export const benchTraccarDevice = (i: number) => ({ id: i + 1, uniqueId: `35${String(i).padStart(13, '0')}` });
