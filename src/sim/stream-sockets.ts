/**
 * The simulator's open websockets, and the test controls that break them the ways real networks do: a drop (all
 * sockets gone at once), half-open (the peer is gone but no FIN ever arrives), slowness, and a garbage frame.
 * A frame counts as served only once it has left on an open socket, which is what ground truth needs. Shared by
 * the websocket simulators (Traccar, Tesla Fleet Telemetry).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

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
