/**
 * What a streamed provider implements for the stream runtime. The runtime owns the sockets (connect, heartbeat,
 * reconnect with backoff, buffering, delivery to core); the adapter says which sockets a connection needs and
 * turns each text frame into canonical readings per provider device.
 */
import type { DeviceReadings } from './poll-adapter.ts';
import type { ProviderErrorClass } from './provider-error.ts';
import type { ProviderConnectionContract } from './provider.ts';

export interface StreamConnectionContext<Credentials, Options = Record<string, unknown>> {
  baseUrl: string;
  credentials: Credentials;
  /** The connection's options, parsed (defaults applied) by the provider's contract. */
  options: Options;
  /** External ids bound in the workspace on this connection. */
  boundDevices: readonly string[];
  signal: AbortSignal;
}

/** One websocket to hold for a connection. `key` is stable across reconnects (for status and backoff). */
export interface SocketPlan {
  key: string;
  url: string;
  headers: Record<string, string>;
}

export type DecodedFrame =
  /** Readings to deliver (possibly none, e.g. an events frame). `resend` marks data the provider says it sent before. */
  | { kind: 'readings'; devices: DeviceReadings[]; resend?: boolean }
  /** A provider keepalive: proof the socket is alive, nothing to deliver. */
  | { kind: 'keepalive' }
  /** A frame that cannot be read: counted and skipped, never fatal. */
  | { kind: 'bad'; reason: string };

export interface StreamAdapter<Credentials extends Record<string, unknown> = Record<string, unknown>> {
  readonly contract: ProviderConnectionContract<Credentials> & { transport: 'stream' };
  /** The sockets a connection needs (Traccar: one; Tesla Fleet Telemetry: one per VIN). */
  plan(context: StreamConnectionContext<Credentials>): SocketPlan[];
  /**
   * Called after a socket opens (and again after every reconnect), before frames are decoded: an adapter that
   * must learn something over HTTP first (Traccar's device list) does it here, into `session`.
   */
  prepare?(context: StreamConnectionContext<Credentials>, socket: SocketPlan, session: Map<string, unknown>): Promise<void>;
  /**
   * Called when the provider refuses the websocket upgrade with a 5xx, which some servers answer for refused
   * credentials too (Traccar's Jetty gives 503 or 500, never 401): the adapter may probe over HTTP and say what the
   * refusal really was. Without it, or when it throws, the status is classified as any HTTP answer.
   */
  classifyRefusal?(context: StreamConnectionContext<Credentials>, socket: SocketPlan, status: number): Promise<ProviderErrorClass>;
  /** Decodes one text frame. Pure but for `session`, which the adapter may read and update (learned ids). */
  decode(frame: string, socket: SocketPlan, session: Map<string, unknown>, receivedAtMs: number): DecodedFrame;
}
