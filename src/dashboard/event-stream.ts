/**
 * Follows a workspace's event stream (`GET /v1/workspaces/{ws}/events`, docs/API.md) with fetch and a stream
 * reader rather than EventSource, which cannot send an Authorization header (and a token must not go in a URL).
 * A stream that drops is opened again with backoff and jitter and resumes after the last event id it saw
 * (Last-Event-ID); one that stays silent past three heartbeats is taken for dead and opened again; 401, 403 and 404
 * are final.
 */
import { $, setText } from './dom.ts';
import { createSseParser, type SseMessage } from './sse-parser.ts';

/** The server writes a comment every 15 s on an idle stream: three missed is a dead stream, not a slow proxy. */
export const stallMs = 45_000;
const firstRetryMs = 1000;
const maxRetryMs = 30_000;
/** A stream that stayed live this long was working: its drop starts the backoff over. */
const stableMs = 30_000;

export type StreamStatus =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'reconnecting'; since: number; retryAt: number; reason: string };

export interface EventStreamOptions {
  path: string;
  token: string;
  /**
   * Called each time a stream has answered, before it counts as live; events may arrive meanwhile. A rejection
   * drops the stream, which is then opened again like any other.
   */
  onOpen(): Promise<void>;
  onMessage(message: SseMessage): void;
  onStatus(status: StreamStatus): void;
  /** The server refused the stream for good (401, 403 or 404): it is not opened again. */
  onRefused(status: number): void;
}

export interface EventStream {
  close(): void;
}

interface Attempt {
  abort: AbortController;
  liveAt: number | undefined;
  /** When the server was last heard from: its answer, then every chunk of the stream. */
  heardAt: number;
  reason: string;
}

function describe(error: unknown): string {
  // fetch answers a network failure with a TypeError whose message says nothing more.
  if (error instanceof TypeError) return 'the server cannot be reached';
  return error instanceof Error ? error.message : String(error);
}

export function followEventStream(options: EventStreamOptions): EventStream {
  let closed = false;
  let lastEventId = '';
  let retryMs = firstRetryMs;
  let failures = 0;
  let downSince: number | undefined;
  let current: AbortController | undefined;
  let retryTimer: number | undefined;

  const read = async (body: ReadableStream<Uint8Array>, attempt: Attempt): Promise<void> => {
    const parser = createSseParser(
      {
        onMessage(message) {
          if (closed) return;
          if (message.type === 'fleetwire.stream.closed') {
            // The server says why it ends the stream (it is stopping, or this tab fell behind) before it does.
            const said = (() => {
              try {
                return JSON.parse(message.data) as { detail?: unknown };
              } catch {
                return {};
              }
            })();
            if (typeof said.detail === 'string') attempt.reason = said.detail;
            return;
          }
          try {
            options.onMessage(message);
          } catch (error) {
            // One event the view could not take must not take the stream down.
            console.warn('an event could not be applied', error);
          }
        },
        onRetry(ms) {
          retryMs = Math.min(maxRetryMs, Math.max(firstRetryMs, ms));
        },
      },
      lastEventId,
    );
    const reader = body.getReader();
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) return;
        attempt.heardAt = Date.now();
        parser.push(decoder.decode(chunk.value, { stream: true }));
        lastEventId = parser.lastEventId;
      }
    } catch {
      if (!attempt.abort.signal.aborted) attempt.reason = 'the connection was lost';
    }
  };

  const open = async (attempt: Attempt): Promise<void> => {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'text/event-stream' };
    if (lastEventId !== '') headers['last-event-id'] = lastEventId;
    const response = await fetch(options.path, { headers, cache: 'no-store', signal: attempt.abort.signal });
    attempt.heardAt = Date.now();
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      closed = true;
      options.onRefused(response.status);
      return;
    }
    if (!response.ok || !response.body) {
      // An id the server did not send (its event log was started again): the next stream starts at its head,
      // and the reload when it opens covers the gap.
      if (response.status === 400) lastEventId = '';
      attempt.reason = `the server answered ${response.status}`;
      await response.body?.cancel();
      return;
    }
    attempt.reason = 'the server ended the stream';
    let ended = false;
    const reading = read(response.body, attempt).finally(() => {
      ended = true;
    });
    try {
      await options.onOpen();
    } catch (error) {
      attempt.reason = `the reload failed: ${describe(error)}`;
      attempt.abort.abort();
    }
    if (!ended && !closed && !attempt.abort.signal.aborted) {
      attempt.liveAt = Date.now();
      downSince = undefined;
      options.onStatus({ state: 'live' });
    }
    await reading;
  };

  const retry = (attempt: Attempt) => {
    if (attempt.liveAt !== undefined && Date.now() - attempt.liveAt >= stableMs) failures = 0;
    const ceiling = Math.min(maxRetryMs, retryMs * 2 ** Math.min(failures, 10));
    // Between half the ceiling and all of it, so tabs that one restart dropped together come back spread out.
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    failures += 1;
    downSince ??= Date.now();
    options.onStatus({ state: 'reconnecting', since: downSince, retryAt: Date.now() + delay, reason: attempt.reason });
    retryTimer = setTimeout(() => void connect(), delay);
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    const attempt: Attempt = { abort: new AbortController(), liveAt: undefined, heardAt: Date.now(), reason: 'the connection was lost' };
    current = attempt.abort;
    // One watchdog from the request on: a server that never answers is as dead as a stream that went quiet.
    const watch = () => {
      const quiet = Date.now() - attempt.heardAt;
      if (quiet < stallMs) {
        watchdog = setTimeout(watch, stallMs - quiet);
        return;
      }
      attempt.reason = `nothing heard from the server for ${Math.round(quiet / 1000)} s`;
      attempt.abort.abort();
    };
    let watchdog = setTimeout(watch, stallMs);
    try {
      await open(attempt);
    } catch (error) {
      if (!attempt.abort.signal.aborted) attempt.reason = describe(error);
    } finally {
      clearTimeout(watchdog);
      attempt.abort.abort();
    }
    if (!closed) retry(attempt);
  };

  options.onStatus({ state: 'connecting' });
  void connect();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      current?.abort();
    },
  };
}

/** The header's live indicator: live, connecting, or reconnecting since when, with the reason in its title. */
export function showStreamStatus(status: StreamStatus): void {
  const badge = $('live');
  badge.dataset.state = status.state;
  if (status.state === 'live') {
    setText(badge, 'Live');
    badge.title = 'Following the event stream: rows change as events arrive.';
  } else if (status.state === 'connecting') {
    setText(badge, 'Connecting…');
    badge.title = '';
  } else {
    setText(badge, `Reconnecting… since ${new Date(status.since).toLocaleTimeString()}`);
    badge.title = `${status.reason}; next attempt at ${new Date(status.retryAt).toLocaleTimeString()}`;
  }
}
