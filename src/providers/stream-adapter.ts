/**
 * What a streamed provider implements for the stream runtime. The runtime owns the sockets (connect, heartbeat,
 * reconnect with backoff, buffering, delivery to core); the adapter says which sockets a connection needs and
 * turns each text frame into canonical readings per provider device. A provider read through a broker implements
 * `SubscriptionAdapter` instead (below).
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
  /** The connection's id: what a subscription names its broker session after, so the session outlives a restart. */
  connectionId?: string;
}

/** One websocket to hold for a connection. `key` is stable across reconnects (for status and backoff). */
export interface SocketPlan {
  key: string;
  url: string;
  headers: Record<string, string>;
  /**
   * The one bound device (external id) this socket carries, when the provider opens a socket per device (Tessie: per
   * VIN). Its socket being down is then that device's trouble, reported as such, not the whole connection's.
   */
  device?: string;
}

/**
 * What a frame or message said besides readings: recognised and counted (logged at most once a minute), never a
 * bad frame.
 */
export interface FrameNotes {
  /** Values the provider marked invalid (the vehicle cannot measure them now): skipped. */
  invalidValues?: number;
  /** Vehicle alerts recognised (Tesla's alerts records). */
  alerts?: number;
  /** Vehicle errors recognised (Tesla's errors records). */
  errors?: number;
}

export type DecodedFrame =
  /** Readings to deliver (possibly none, e.g. an events frame). `resend` marks data the provider says it sent before. */
  | { kind: 'readings'; devices: DeviceReadings[]; resend?: boolean; notes?: FrameNotes }
  /** A provider keepalive: proof the socket is alive, nothing to deliver. */
  | { kind: 'keepalive' }
  /** A frame that cannot be read: counted and skipped, never fatal. */
  | { kind: 'bad'; reason: string };

export interface StreamAdapter<Credentials extends Record<string, unknown> = Record<string, unknown>> {
  readonly contract: ProviderConnectionContract<Credentials> & { transport: 'stream' };
  /** The sockets a connection needs (Traccar: one; Tessie: one per VIN). */
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
  /**
   * Decodes one text frame. Pure but for `session`, which the adapter may read and update (learned ids). `context`
   * is the connection's (its options, parsed), for adapters whose decoding depends on them.
   */
  decode(
    frame: string,
    socket: SocketPlan,
    session: Map<string, unknown>,
    receivedAtMs: number,
    context?: StreamConnectionContext<Credentials>,
  ): DecodedFrame;
}

/**
 * The broker subscription a subscription adapter holds for a connection: one client per connection, whose
 * messages each carry a topic (MQTT) or a channel (Redis). Credentials travel here for the client only; the
 * runtime never logs a plan.
 */
export type SubscriptionPlan =
  | {
      broker: 'mqtt';
      /** Stable across reconnects (status, backoff); never carries a secret. */
      key: string;
      /** `mqtt://host:port` or `mqtts://host:port`, without the path or credentials. */
      url: string;
      username?: string;
      password?: string;
      /** The broker keeps the session (subscriptions, QoS 1 messages queued meanwhile) under this id. */
      clientId: string;
      /** Topic filters, subscribed at `qos` with a persistent session. */
      topics: string[];
      qos: 0 | 1 | 2;
    }
  | {
      broker: 'redis';
      key: string;
      /** `redis://host:port` or `rediss://host:port`, without the path or credentials. */
      url: string;
      username?: string;
      password?: string;
      /** Channels for SUBSCRIBE and glob patterns for PSUBSCRIBE. */
      channels: string[];
      patterns: string[];
    };

/** One message a broker delivered: its topic or channel, and its payload as text. */
export interface BrokerMessage {
  topic: string;
  payload: string;
  /** An MQTT retained message: the broker's stored copy, sent on subscribe, not something that just happened. */
  retained?: boolean;
}

/**
 * A streamed provider whose data comes through a broker (MQTT, Redis pub/sub) rather than websockets. The runtime
 * owns the client (connect, resubscribe, reconnect with backoff, status); the adapter says what to subscribe to
 * and turns each message into canonical readings per provider device.
 */
export interface SubscriptionAdapter<Credentials extends Record<string, unknown> = Record<string, unknown>> {
  readonly kind: 'subscription';
  readonly contract: ProviderConnectionContract<Credentials> & { transport: 'stream' };
  /** The subscription a connection needs; throws a `permanent` ProviderError for a base URL it cannot use. */
  subscription(context: StreamConnectionContext<Credentials>): SubscriptionPlan;
  /** Decodes one message. Pure; never throws (an unreadable message is `bad`). */
  decodeMessage(message: BrokerMessage, context: StreamConnectionContext<Credentials>, receivedAtMs: number): DecodedFrame;
}

/** Either kind of stream adapter, as the registry lists them and the runtime takes them. */
export type AnyStreamAdapter = StreamAdapter | SubscriptionAdapter;

export function isSubscriptionAdapter(adapter: AnyStreamAdapter): adapter is SubscriptionAdapter {
  return (adapter as { kind?: string }).kind === 'subscription';
}
