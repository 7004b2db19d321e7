/**
 * One broker subscription, kept open: the client a subscription adapter's plan asks for (MQTT through `mqtt`, Redis
 * pub/sub through `ioredis`), connected, subscribed, its messages decoded, and reconnected with capped exponential
 * backoff and jitter when it drops. Its state has the shape of a SocketSession's, so a connection reports both the
 * same way: open, connectedSince, lastMessageAt, lastHeartbeatAt, reconnects, and the last error in the closed set
 * (the broker refused the credentials: `auth`; unreachable or dropped: `transient`; a plan it cannot use:
 * `permanent`). The clients' own reconnect loops are off: this session decides when to try again, by the class.
 * Nothing here throws out of a timer or an event handler, and credentials never reach a log or an error message.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { Redis } from 'ioredis';
import type { ProviderErrorClass } from '../providers/provider-error.ts';
import type { BrokerMessage, StreamConnectionContext, SubscriptionAdapter, SubscriptionPlan } from '../providers/stream-adapter.ts';
import { initialSocketState, reconnectDelayMs, type SocketEvents, type SocketState, type SocketTimings } from './socket-session.ts';

/** What a broker client must offer the session: end it, and whether it is still the current one. */
interface BrokerClient {
  close(): void;
}

export class SubscriptionSession {
  readonly state: SocketState = initialSocketState();
  private client: BrokerClient | undefined;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastArrivalMs = 0;

  constructor(
    private readonly adapter: SubscriptionAdapter,
    private readonly context: StreamConnectionContext<Record<string, unknown>>,
    readonly plan: SubscriptionPlan,
    private readonly timings: SocketTimings,
    private readonly events: SocketEvents,
    private readonly random: () => number = Math.random,
  ) {}

  start(): void {
    this.connect();
  }

  /** Ends the client (an MQTT session stays with the broker) and stops reconnecting; idempotent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    const client = this.client;
    this.client = undefined;
    client?.close();
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
    try {
      this.client = this.plan.broker === 'mqtt' ? this.connectMqtt(this.plan) : this.connectRedis(this.plan);
    } catch (error) {
      this.fail('permanent', `cannot open ${this.plan.key}: ${(error as Error).message}`);
      this.scheduleReconnect('permanent');
    }
  }

  /** Called once per client when it is gone (closed, refused, unreachable): counts it and tries again. */
  private lost(client: BrokerClient, errorClass: ProviderErrorClass): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.heartbeatTimer);
    const wasOpen = this.state.open;
    this.state.open = false;
    if (this.stopped) return;
    if (wasOpen && (this.state.lastErrorAt ?? 0) < (this.state.connectedSince ?? 0)) this.fail('closed', `${this.plan.key}: the broker closed the connection`);
    this.state.reconnects += 1;
    this.scheduleReconnect(errorClass);
  }

  private opened(): void {
    this.state.open = true;
    this.state.connectedSince = Date.now();
    this.state.lastHeartbeatAt = Date.now();
  }

  /**
   * When a message arrived, strictly increasing per session: arrival order is the only order an MQTT metric carries,
   * and messages a broker queued while we were away come in one burst. Two in one millisecond must not share an
   * observed time, or the later value would be taken for a duplicate of the earlier one.
   */
  private arrival(): number {
    this.lastArrivalMs = Math.max(Date.now(), this.lastArrivalMs + 1);
    return this.lastArrivalMs;
  }

  private handleMessage(message: BrokerMessage, at: number): void {
    this.state.lastMessageAt = at;
    this.state.lastHeartbeatAt = at;
    let decoded;
    try {
      decoded = this.adapter.decodeMessage(message, this.context, at);
    } catch (error) {
      decoded = { kind: 'bad' as const, reason: `decoder threw: ${(error as Error).message}` };
    }
    if (decoded.kind === 'bad') {
      this.state.badFrames += 1;
      this.events.onBadFrame(decoded.reason);
      return;
    }
    // A message that decodes proves the subscription works: the next failure starts the backoff afresh.
    this.attempt = 0;
    if (decoded.kind === 'keepalive') return;
    if (decoded.devices.length > 0) this.events.onReadings(decoded.devices, at);
    if (decoded.notes) this.events.onNotes?.(decoded.notes);
  }

  private connectMqtt(plan: Extract<SubscriptionPlan, { broker: 'mqtt' }>): BrokerClient {
    const client: MqttClient = mqtt.connect(plan.url, {
      clientId: plan.clientId,
      // A persistent session: the broker keeps the subscriptions, and QoS 1 messages published while we are away.
      clean: false,
      protocolVersion: 4,
      username: plan.username,
      password: plan.password,
      reconnectPeriod: 0,
      connectTimeout: this.timings.handshakeTimeoutMs,
      keepalive: Math.max(1, Math.round(this.timings.heartbeatMs / 1000)),
    });
    // A clean stop lets the acknowledgements of what was taken in go out first, so the broker does not send it again.
    const handle: BrokerClient = { close: () => void client.end(false, {}, () => undefined) };
    let refused: ProviderErrorClass | undefined;
    client.on('connect', () => {
      if (this.client !== handle) return;
      // Open once subscribed: from then on the broker keeps what is published for this session.
      client.subscribe(plan.topics, { qos: plan.qos }, (error, granted) => {
        if (this.client !== handle) return;
        const rejected = (granted ?? []).filter((g) => g.qos === 128);
        if (error || rejected.length > 0) {
          this.fail('auth', `${plan.key}: the broker refused the subscription${rejected.length > 0 ? ` to ${rejected.map((g) => g.topic).join(', ')}` : ''}`);
          refused = 'auth';
          client.end(true);
          return;
        }
        this.opened();
      });
    });
    client.on('message', (topic, payload, packet) => {
      if (this.client !== handle) return;
      this.handleMessage({ topic, payload: payload.toString('utf8'), retained: packet.retain }, this.arrival());
    });
    client.on('packetreceive', (packet) => {
      if (this.client === handle && packet.cmd === 'pingresp') this.state.lastHeartbeatAt = Date.now();
    });
    client.on('error', (error: Error & { code?: unknown }) => {
      if (this.client !== handle) return;
      refused = mqttErrorClass(error);
      this.fail(refused, `${plan.key}: ${refused === 'auth' ? 'the broker refused the credentials' : brokerMessage(error)}`);
      client.end(true);
    });
    client.on('close', () => this.lost(handle, refused ?? 'transient'));
    return handle;
  }

  private connectRedis(plan: Extract<SubscriptionPlan, { broker: 'redis' }>): BrokerClient {
    const client = new Redis(plan.url, {
      username: plan.username,
      password: plan.password,
      lazyConnect: true,
      // This session reconnects, by the error's class; ioredis's own loop would retry refused credentials forever.
      retryStrategy: () => null,
      autoResubscribe: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.timings.handshakeTimeoutMs,
      // TLS with the system's CAs for rediss:// (given only then: an explicit undefined would override the URL's).
      ...(plan.url.startsWith('rediss:') ? { tls: {} } : {}),
    });
    let refused: ProviderErrorClass | undefined;
    const handle: BrokerClient = { close: () => client.disconnect(false) };
    client.on('error', (error: Error) => {
      if (this.client !== handle) return;
      refused = redisErrorClass(error);
      this.fail(refused, `${plan.key}: ${refused === 'auth' ? 'the broker refused the credentials' : brokerMessage(error)}`);
    });
    client.on('pmessage', (_pattern: string, channel: string, message: string) => {
      if (this.client === handle) this.handleMessage({ topic: channel, payload: message }, this.arrival());
    });
    client.on('message', (channel: string, message: string) => {
      if (this.client === handle) this.handleMessage({ topic: channel, payload: message }, this.arrival());
    });
    client.on('end', () => this.lost(handle, refused ?? 'transient'));
    client
      .connect()
      .then(async () => {
        if (plan.patterns.length > 0) await client.psubscribe(...plan.patterns);
        if (plan.channels.length > 0) await client.subscribe(...plan.channels);
        if (this.client !== handle) return;
        this.opened();
        this.startRedisHeartbeat(client, handle);
      })
      .catch((error: Error) => {
        if (this.client !== handle) return;
        refused ??= redisErrorClass(error);
        this.fail(refused, `${plan.key}: ${refused === 'auth' ? 'the broker refused the credentials' : brokerMessage(error)}`);
        client.disconnect(false);
      });
    return handle;
  }

  /**
   * A subscribed Redis connection sends nothing while nobody publishes: a PING (allowed in subscriber mode) every
   * heartbeat proves it alive, and one unanswered for `deadAfterMs` takes it for dead (half-open).
   */
  private startRedisHeartbeat(client: Redis, handle: BrokerClient): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (this.client !== handle) return;
      if (Date.now() - (this.state.lastHeartbeatAt ?? 0) > this.timings.deadAfterMs) {
        this.fail('transient', `${this.plan.key} answered no ping for ${this.timings.deadAfterMs} ms: taken for dead`);
        client.disconnect(false);
        return;
      }
      client.ping().then(
        () => {
          if (this.client === handle) this.state.lastHeartbeatAt = Date.now();
        },
        () => undefined,
      );
    }, this.timings.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private scheduleReconnect(errorClass: ProviderErrorClass): void {
    if (this.stopped) return;
    this.attempt += 1;
    const delay = reconnectDelayMs(errorClass, this.attempt, this.timings, this.random);
    this.state.nextReconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }
}

/**
 * CONNACK refusals (MQTT 3.1.1: 4 bad user name or password, 5 not authorized; MQTT 5: 134, 135) are `auth`; an
 * identifier or protocol the broker rejects is `permanent`; anything else (refused, reset, timed out) `transient`.
 */
export function mqttErrorClass(error: { code?: unknown }): ProviderErrorClass {
  const code = error.code;
  if (code === 4 || code === 5 || code === 134 || code === 135) return 'auth';
  if (code === 1 || code === 2 || code === 132 || code === 133) return 'permanent';
  return 'transient';
}

/** Redis refuses credentials with WRONGPASS or NOAUTH (or, without ACLs, "AUTH ... called without any password"). */
export function redisErrorClass(error: { message?: string }): ProviderErrorClass {
  return /WRONGPASS|NOAUTH|NOPERM|invalid password|without any password configured/i.test(error.message ?? '') ? 'auth' : 'transient';
}

/** A client error's message with anything that looks like a URL's userinfo removed. */
function brokerMessage(error: Error): string {
  return error.message.replace(/\/\/[^@/\s]*@/g, '//');
}
