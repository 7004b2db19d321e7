/**
 * MyGeotab's rate limits, kept on the client side so a poll does not trip them. From the SDK: "Rate limits of 1 RPS
 * (request-per-second) has been added to all GetFeed APIs" (new.md, 5.7.1902), applied per method, entity, user
 * name and database (guide "Rate limits"); a server that applies a limit to a method says so on every successful
 * answer with `X-Rate-Limit-Limit` (the period) and `X-Rate-Limit-Remaining` (SDK "Concepts"); and no more than 10
 * Authenticate calls per user per minute (blog "api-call-limits", SDK "Concepts").
 *
 * So a GetFeed of an entity type waits until the period its last answer declared has passed once that answer said
 * nothing remains (for MyGeotab's 1 per second: a second after the previous call). A server that declares no
 * limit is not slowed down; an OverLimitException it answers anyway is `rate_limited` with its Retry-After, which
 * the poll runner and the scheduler wait out (not this module: they own the wait across polls). The times live in
 * the connection's session memory, so consecutive polls share them. Clock and sleep are injectable: tests pace on
 * the simulator's clock.
 */
import { ProviderError } from '../provider-error.ts';

export interface PacingClock {
  now: () => number;
  /** Resolves after `ms`; rejects when the signal aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export const authenticatePerMinute = 10;
/** Longer waits are not slept inside a poll: the call is refused as `rate_limited` and the scheduler waits. */
export const maxPaceWaitMs = 5000;

const feedCallsKey = 'geotab.feedCalls';
const authenticateCallsKey = 'geotab.authenticateCalls';

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const realClock: PacingClock = { now: Date.now, sleep: abortableSleep };

function memoryMap<V>(memory: Map<string, unknown>, key: string): Map<string, V> {
  const held = memory.get(key);
  if (held instanceof Map) return held as Map<string, V>;
  const fresh = new Map<string, V>();
  memory.set(key, fresh);
  return fresh;
}

interface FeedPace {
  /** When the last call of the type was made. */
  lastCallMs: number;
  /** No call of the type before this. */
  notBeforeMs: number;
}

/** Waits until a GetFeed of `typeName` is allowed, then counts it as made. */
export async function paceFeedCall(memory: Map<string, unknown>, typeName: string, clock: PacingClock, signal?: AbortSignal): Promise<void> {
  const paces = memoryMap<FeedPace>(memory, feedCallsKey);
  const pace = paces.get(typeName);
  const wait = (pace?.notBeforeMs ?? -Infinity) - clock.now();
  if (wait > maxPaceWaitMs) {
    throw new ProviderError('rate_limited', `Geotab GetFeed ${typeName}: the server's declared limit leaves no call for ${Math.ceil(wait / 1000)} s`, wait);
  }
  if (wait > 0) await clock.sleep(wait, signal);
  paces.set(typeName, { lastCallMs: clock.now(), notBeforeMs: -Infinity });
}

/** What the answer to the last GetFeed of `typeName` declared: nothing left in the period means wait it out. */
export function noteFeedAnswer(memory: Map<string, unknown>, typeName: string, declared: { periodMs: number; remaining: number } | undefined): void {
  const pace = memoryMap<FeedPace>(memory, feedCallsKey).get(typeName);
  if (pace && declared && declared.remaining <= 0) pace.notBeforeMs = pace.lastCallMs + declared.periodMs;
}

/**
 * Counts an Authenticate about to be made, or refuses it as `rate_limited` (with the wait) when ten were made in
 * the last minute: a connection whose sessions keep dying must not lock its user out of MyGeotab.
 */
export function takeAuthenticate(memory: Map<string, unknown>, loginKey: string, now: () => number): void {
  const calls = memoryMap<number[]>(memory, authenticateCallsKey);
  const at = now();
  const recent = (calls.get(loginKey) ?? []).filter((t) => t > at - 60_000);
  if (recent.length >= authenticatePerMinute) {
    calls.set(loginKey, recent);
    const retryAfterMs = Math.max(1000, recent[0]! + 60_000 - at);
    throw new ProviderError('rate_limited', `Geotab Authenticate: ${authenticatePerMinute} calls in the last minute already (MyGeotab's limit per user)`, retryAfterMs);
  }
  recent.push(at);
  calls.set(loginKey, recent);
}
