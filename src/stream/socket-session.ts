/**
 * One provider websocket, kept open: connect (refused upgrades classified like HTTP answers), let the adapter
 * prepare, decode every text frame, detect a dead socket by heartbeat (a ping every `heartbeatMs`; no pong and no
 * frame for `deadAfterMs` means dead, which also catches half-open sockets that never see a FIN), and reconnect
 * with capped exponential backoff and jitter. A bad frame is counted and skipped; nothing here throws out of a
 * timer or an event handler, and one socket's trouble never touches another.
 */
import { WebSocket } from 'ws';
import { classifyHttpStatus, isProviderError, parseRetryAfter, type ProviderErrorClass } from '../providers/provider-error.ts';
import type { DeviceReadings } from '../providers/poll-adapter.ts';
import type { FrameNotes, SocketPlan, StreamAdapter, StreamConnectionContext } from '../providers/stream-adapter.ts';

export interface SocketTimings {
  heartbeatMs: number;
  deadAfterMs: number;
  handshakeTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
}

export interface SocketState {
  open: boolean;
  connectedSince: number | null;
  lastMessageAt: number | null;
  lastHeartbeatAt: number | null;
  reconnects: number;
  badFrames: number;
  lastErrorClass: ProviderErrorClass | 'closed' | null;
  lastError: string | null;
  lastErrorAt: number | null;
  nextReconnectAt: number | null;
}

/**
 * How long a session waits before its `attempt`th reconnect: exponential from `backoffBaseMs`, capped, with jitter
 * (0.5 to 1.5 times). Refused credentials or a bad address will not fix themselves in a second: they wait the longest.
 */
export function reconnectDelayMs(errorClass: ProviderErrorClass, attempt: number, timings: Pick<SocketTimings, 'backoffBaseMs' | 'backoffCapMs'>, random: () => number): number {
  const { backoffBaseMs, backoffCapMs } = timings;
  const exponential = errorClass === 'auth' || errorClass === 'permanent' ? backoffCapMs : Math.min(backoffCapMs, backoffBaseMs * 2 ** (attempt - 1));
  return Math.round(exponential * (0.5 + random()));
}

/** A session's state before its first connect (websocket and broker sessions alike). */
export function initialSocketState(): SocketState {
  return {
    open: false,
    connectedSince: null,
    lastMessageAt: null,
    lastHeartbeatAt: null,
    reconnects: 0,
    badFrames: 0,
    lastErrorClass: null,
    lastError: null,
    lastErrorAt: null,
    nextReconnectAt: null,
  };
}

export interface SocketEvents {
  /** Readings decoded from one frame, with when the frame arrived. */
  onReadings(devices: DeviceReadings[], receivedAtMs: number): void;
  onBadFrame(reason: string): void;
  /** What a frame said besides readings (invalid values skipped, alerts, errors): counted, never bad. */
  onNotes?(notes: FrameNotes): void;
}

/** Tries of the adapter's `prepare` on one open socket before the socket is given up. */
const prepareAttempts = 4;
/** Frames held while a socket is prepared; beyond this they are counted as bad rather than held without bound. */
const earlyFrameLimit = 10_000;

export class SocketSession {
  readonly state: SocketState = initialSocketState();
  private ws: WebSocket | undefined;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastSignOfLife = 0;
  private readonly session = new Map<string, unknown>();
  private readonly prepareTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly adapter: StreamAdapter,
    private readonly context: StreamConnectionContext<Record<string, unknown>>,
    readonly plan: SocketPlan,
    private readonly timings: SocketTimings,
    private readonly events: SocketEvents,
    private readonly random: () => number = Math.random,
  ) {}

  start(): void {
    this.connect();
  }

  /** Closes the socket and stops reconnecting; idempotent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    for (const timer of this.prepareTimers) clearTimeout(timer);
    this.prepareTimers.clear();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
    }
    this.state.open = false;
    this.state.nextReconnectAt = null;
  }

  private fail(errorClass: SocketState['lastErrorClass'], message: string): void {
    this.state.lastErrorClass = errorClass;
    this.state.lastError = message.slice(0, 500);
    this.state.lastErrorAt = Date.now();
  }

  private connect(): void {
    if (this.stopped) return;
    this.state.nextReconnectAt = null;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.plan.url, { headers: this.plan.headers, handshakeTimeout: this.timings.handshakeTimeoutMs });
    } catch (error) {
      this.fail('permanent', `cannot open ${this.plan.key}: ${(error as Error).message}`);
      this.scheduleReconnect('permanent');
      return;
    }
    this.ws = ws;
    let refusedClass: ProviderErrorClass | undefined;
    let retryAfterMs: number | undefined;
    let prepared = false;
    const early: { text: string; at: number }[] = [];

    let refusalProbe: Promise<void> | undefined;
    ws.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0;
      refusedClass = classifyHttpStatus(status);
      retryAfterMs = parseRetryAfter(response.headers['retry-after'] as string | undefined);
      const message = `the provider refused the websocket upgrade for ${this.plan.key} with HTTP ${status}`;
      this.fail(refusedClass, message);
      response.resume();
      if (status >= 500 && this.adapter.classifyRefusal) {
        // A server that answers refused credentials with a 5xx: the adapter probes to tell auth from an outage.
        refusalProbe = this.adapter.classifyRefusal(this.context, this.plan, status).then(
          (probed) => {
            refusedClass = probed;
            this.fail(probed, probed === 'auth' ? `${message}: the provider refuses the credentials` : message);
          },
          () => undefined,
        );
      }
      ws.terminate();
    });

    ws.on('open', () => {
      this.state.open = true;
      this.state.connectedSince = Date.now();
      this.lastSignOfLife = Date.now();
      this.state.lastHeartbeatAt = Date.now();
      this.startHeartbeat(ws);
      this.prepareSocket(ws, 1, () => {
        prepared = true;
        for (const frame of early.splice(0)) this.handleFrame(frame.text, frame.at);
      });
    });

    ws.on('message', (data, isBinary) => {
      const at = Date.now();
      this.lastSignOfLife = at;
      this.state.lastMessageAt = at;
      if (isBinary) {
        this.countBad('binary frame');
        return;
      }
      const text = data.toString();
      if (prepared) this.handleFrame(text, at);
      else if (early.length < earlyFrameLimit) early.push({ text, at });
      else this.countBad(`more than ${earlyFrameLimit} frames arrived before the socket was prepared`);
    });

    ws.on('pong', () => {
      this.lastSignOfLife = Date.now();
      this.state.lastHeartbeatAt = this.lastSignOfLife;
    });

    ws.on('error', (error) => {
      if (!refusedClass) this.fail('transient', `${this.plan.key}: ${error.message}`);
    });

    ws.on('close', (code) => {
      clearInterval(this.heartbeatTimer);
      const wasOpen = this.state.open;
      this.state.open = false;
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      // A socket that closes without an error of its own (the provider hung up) says so.
      if (wasOpen && (this.state.lastErrorAt ?? 0) < (this.state.connectedSince ?? 0)) this.fail('closed', `${this.plan.key} closed (code ${code})`);
      this.state.reconnects += 1;
      if (refusalProbe) void refusalProbe.then(() => this.scheduleReconnect(refusedClass ?? 'transient', retryAfterMs));
      else this.scheduleReconnect(refusedClass ?? 'transient', retryAfterMs);
    });
  }

  /**
   * Runs the adapter's `prepare` for an open socket; frames wait meanwhile. A failure is retried on the same socket
   * (it is open and its frames are real data) with backoff, up to `prepareAttempts` tries; refused credentials
   * are not retried. Whether it ends in success or not, `release` hands the waiting frames on: after a final
   * failure they decode with what the session already knows (devices learned on earlier sockets), and what cannot
   * decode is counted as bad frames, never dropped unseen. Then the socket is closed and reconnects.
   */
  private prepareSocket(ws: WebSocket, attempt: number, release: () => void): void {
    const prepare = this.adapter.prepare?.(this.context, this.plan, this.session) ?? Promise.resolve();
    prepare.then(
      () => {
        if (!this.stopped) release();
      },
      (error: unknown) => {
        if (this.stopped) return;
        const errorClass = isProviderError(error) ? error.errorClass : 'transient';
        this.fail(errorClass, `preparing ${this.plan.key} failed (attempt ${attempt} of ${prepareAttempts}): ${(error as Error).message}`);
        const retryable = errorClass !== 'auth' && errorClass !== 'permanent';
        if (retryable && attempt < prepareAttempts && ws.readyState === WebSocket.OPEN) {
          const { backoffBaseMs, backoffCapMs } = this.timings;
          const retryAfterMs = isProviderError(error) ? error.retryAfterMs : undefined;
          const delay = Math.max(retryAfterMs ?? 0, Math.min(backoffCapMs, backoffBaseMs * 2 ** (attempt - 1)));
          const timer = setTimeout(() => {
            this.prepareTimers.delete(timer);
            this.prepareSocket(ws, attempt + 1, release);
          }, delay);
          timer.unref();
          this.prepareTimers.add(timer);
          return;
        }
        release();
        ws.terminate();
      },
    );
  }

  private handleFrame(text: string, at: number): void {
    let decoded;
    try {
      decoded = this.adapter.decode(text, this.plan, this.session, at, this.context);
    } catch (error) {
      decoded = { kind: 'bad' as const, reason: `decoder threw: ${(error as Error).message}` };
    }
    if (decoded.kind === 'bad') {
      this.countBad(decoded.reason);
      return;
    }
    // A frame that decodes proves the connection works: the next failure starts the backoff afresh.
    this.attempt = 0;
    this.state.lastHeartbeatAt = at;
    if (decoded.kind === 'keepalive') return;
    if (decoded.devices.length > 0) this.events.onReadings(decoded.devices, at);
    if (decoded.notes) this.events.onNotes?.(decoded.notes);
  }

  private countBad(reason: string): void {
    this.state.badFrames += 1;
    this.events.onBadFrame(reason);
  }

  private startHeartbeat(ws: WebSocket): void {
    clearInterval(this.heartbeatTimer);
    let lastTickAt = Date.now();
    this.heartbeatTimer = setInterval(() => {
      const now = Date.now();
      // A tick this late means this process was stalled (a long GC, a big batch), not listening: frames and pongs
      // may be waiting unread in the socket. Judge silence at the next tick, once they have been read.
      const stalled = now - lastTickAt > 2 * this.timings.heartbeatMs;
      lastTickAt = now;
      if (!stalled && now - this.lastSignOfLife > this.timings.deadAfterMs) {
        this.fail('transient', `${this.plan.key} sent nothing and answered no ping for ${this.timings.deadAfterMs} ms: taken for dead`);
        ws.terminate();
        return;
      }
      try {
        ws.ping();
      } catch {
        // The socket is closing; its close handler reconnects.
      }
    }, this.timings.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private scheduleReconnect(errorClass: ProviderErrorClass, retryAfterMs?: number): void {
    if (this.stopped) return;
    this.attempt += 1;
    const delay = Math.max(retryAfterMs ?? 0, reconnectDelayMs(errorClass, this.attempt, this.timings, this.random));
    this.state.nextReconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }
}
