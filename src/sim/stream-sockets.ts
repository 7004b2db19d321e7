/**
 * The simulator's open websockets, and the test controls that break them the ways real networks do: a drop (all
 * sockets gone at once), half-open (the peer is gone but no FIN ever arrives), slowness, and a garbage frame.
 * A frame counts as served only once it has left on an open socket, which is what ground truth needs. Shared by
 * the websocket simulators (Traccar, Tessie).
 */
import { STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, type WebSocketServer } from 'ws';
import type { FaultInjector } from './faults.ts';
import type { GroundTruth } from './ground-truth.ts';
import type { RunningSimulator, SimulatorListenOptions } from './simulator.ts';

export interface StreamSocketControls {
  /** Terminates every open socket at once, without a close frame, as a crashed server would. */
  dropSockets(): void;
  /**
   * The sockets open now go silent and stay open: nothing more is sent on them, nothing they receive is read (no
   * pong, no close reply), no FIN. Sockets opened afterwards work normally, as after a reconnect.
   */
  goHalfOpen(): void;
  /** Delays every frame by `delayMs` from now on (0 ends slow mode); frames keep their order. */
  setSlowMode(delayMs: number): void;
  /** Sends one frame that is not valid JSON to every open socket. Nothing is recorded as served. */
  sendMalformedFrame(text?: string): void;
  /** Sockets open now (half-open ones included). */
  readonly openSockets: number;
}

interface Entry<Tag> {
  ws: WebSocket;
  tag: Tag;
  silent: boolean;
  /** When this socket's last delayed frame goes out; later frames wait for it, so order holds. */
  lastDueAt: number;
}

export class SimulatorSockets<Tag> {
  private readonly entries = new Set<Entry<Tag>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private delayMs = 0;

  /**
   * `onFrameSent` runs for every frame that left on a socket (the simulator's served count); `malformedFrame` is
   * what `sendMalformedFrame` sends by default: a cut-off frame of the provider's own kind.
   */
  constructor(
    private readonly onFrameSent: () => void,
    private readonly malformedFrame: string,
  ) {}

  add(ws: WebSocket, tag: Tag): void {
    const entry: Entry<Tag> = { ws, tag, silent: false, lastDueAt: 0 };
    this.entries.add(entry);
    ws.on('close', () => this.entries.delete(entry));
    // A socket error ends in 'close'; the listener keeps it from being an uncaught 'error' event.
    ws.on('error', () => undefined);
  }

  /** Sends `text` on every open socket whose tag passes; `onSent` runs per socket once the frame has left. */
  send(filter: (tag: Tag) => boolean, text: string, onSent?: (tag: Tag) => void): void {
    for (const entry of this.entries) if (filter(entry.tag)) this.sendOne(entry, text, onSent);
  }

  /** Sends on one socket only (the opening frame of a new connection). */
  sendTo(ws: WebSocket, text: string, onSent?: (tag: Tag) => void): void {
    for (const entry of this.entries) if (entry.ws === ws) this.sendOne(entry, text, onSent);
  }

  get controls(): StreamSocketControls {
    const entries = this.entries;
    return {
      dropSockets: () => {
        for (const entry of entries) entry.ws.terminate();
      },
      goHalfOpen: () => {
        for (const entry of entries) {
          entry.silent = true;
          entry.ws.pause();
        }
      },
      setSlowMode: (delayMs: number) => {
        this.delayMs = Math.max(0, delayMs);
      },
      sendMalformedFrame: (text = this.malformedFrame) => {
        this.send(() => true, text);
      },
      get openSockets() {
        return entries.size;
      },
    };
  }

  /** Closes everything: pending delayed frames are dropped, sockets terminated. */
  closeAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const entry of this.entries) entry.ws.terminate();
    this.entries.clear();
  }

  private sendOne(entry: Entry<Tag>, text: string, onSent?: (tag: Tag) => void): void {
    if (entry.silent) return;
    const deliver = () => {
      if (entry.silent || entry.ws.readyState !== WebSocket.OPEN) return;
      entry.ws.send(text, (error) => {
        if (error) return;
        this.onFrameSent();
        onSent?.(entry.tag);
      });
    };
    const now = Date.now();
    if (this.delayMs === 0 && entry.lastDueAt <= now) {
      deliver();
      return;
    }
    entry.lastDueAt = Math.max(now + this.delayMs, entry.lastDueAt);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      deliver();
    }, entry.lastDueAt - now);
    this.timers.add(timer);
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the connection (no websocket). */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ message });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** What a websocket simulator returns: the common handle, the socket controls, and a tick on demand. */
export interface RunningStreamSimulator extends RunningSimulator, StreamSocketControls {
  /** Advances every fleet and sends now, without waiting for the timer. */
  tick(): void;
  /** Ticks that threw (the timer keeps running); the last error is kept for a test to show. */
  readonly tickErrors: { count: number; last?: unknown };
}

export interface StreamSimulatorParts<Account, Tag> {
  provider: string;
  server: Server;
  wss: WebSocketServer;
  sockets: SimulatorSockets<Tag>;
  accounts: readonly Account[];
  /** Advances one account's fleet to `nowMs` and sends what it produced. */
  tickAccount(account: Account, nowMs: number): void;
  groundTruth: GroundTruth;
  faults: FaultInjector;
  served: { requests: number };
  listen: SimulatorListenOptions & { tickMs?: number };
  /** Releases what the provider holds beyond sockets and timers here (its own timers, held upgrades). */
  onStop?(): void;
}

/**
 * Listens, ticks every account on a timer (a failing tick is counted, never thrown), and builds the running
 * handle: the part both websocket simulators share.
 */
export async function runStreamSimulator<Account, Tag>(parts: StreamSimulatorParts<Account, Tag>): Promise<RunningStreamSimulator> {
  const { server, wss, sockets, listen } = parts;
  const now = listen.now ?? Date.now;
  const tickErrors: { count: number; last?: unknown } = { count: 0 };
  const tick = () => {
    const nowMs = now();
    for (const account of parts.accounts) {
      try {
        parts.tickAccount(account, nowMs);
      } catch (error) {
        tickErrors.count += 1;
        tickErrors.last = error;
      }
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, listen.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const tickTimer = setInterval(tick, listen.tickMs ?? 1000);

  let stopping: Promise<void> | undefined;
  const controls = sockets.controls;
  return {
    provider: parts.provider,
    url: `http://${address.address}:${address.port}`,
    groundTruth: parts.groundTruth,
    faults: parts.faults,
    served: parts.served,
    tickErrors,
    tick,
    dropSockets: controls.dropSockets,
    goHalfOpen: controls.goHalfOpen,
    setSlowMode: controls.setSlowMode,
    sendMalformedFrame: controls.sendMalformedFrame,
    get openSockets() {
      return controls.openSockets;
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(tickTimer);
        parts.onStop?.();
        sockets.closeAll();
        wss.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}
