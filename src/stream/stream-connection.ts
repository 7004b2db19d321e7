/**
 * One provider connection held by this stream process: the sockets its adapter plans (Traccar one, Tessie one per
 * VIN) or the one broker subscription a subscription adapter asks for (Tesla Fleet Telemetry's MQTT or Redis
 * dispatcher), kept in line with the connection's grant from core (new devices, new credentials), and the counters
 * its status report is made of. Readings become canonical updates here, stamped with the frame's arrival time, and
 * go to the pipeline. What a subscription delivers for a device not bound on the connection is dropped and counted
 * here (a broker carries the whole fleet); what frames say besides readings (alerts, errors, invalid values) is
 * counted and logged at most once a minute.
 */
import type { StreamConnectionGrant, StreamStatus } from '../canonical/stream-api.ts';
import type { CanonicalUpdate } from '../canonical/update.ts';
import type { Logger } from '../logging.ts';
import type { DeviceReadings } from '../providers/poll-adapter.ts';
import { optionsSchemaOf } from '../providers/provider.ts';
import {
  isSubscriptionAdapter,
  type AnyStreamAdapter,
  type FrameNotes,
  type SocketPlan,
  type StreamConnectionContext,
  type SubscriptionPlan,
} from '../providers/stream-adapter.ts';
import { SocketSession, type SocketEvents, type SocketState, type SocketTimings } from './socket-session.ts';
import { SubscriptionSession } from './subscription-session.ts';

/** A socket or a subscription: what the connection holds open, keyed by its plan's key. */
type Session = SocketSession | SubscriptionSession;

export interface ConnectionCounters {
  readingsIn: number;
  badFrames: number;
  /** Readings of devices not bound on this connection, dropped (subscriptions only). */
  unboundReadings: number;
  /** Values the provider marked invalid, skipped. */
  invalidValues: number;
  /** Vehicle alerts and errors recognised. */
  alerts: number;
  errors: number;
}

export class StreamConnection {
  private sockets = new Map<string, Session>();
  private abort = new AbortController();
  readonly counters: ConnectionCounters = { readingsIn: 0, badFrames: 0, unboundReadings: 0, invalidValues: 0, alerts: 0, errors: 0 };
  private closedReconnects = 0;
  private lastBadLogAt = 0;
  private lastNotesLogAt = 0;
  private lastUnboundLogAt = 0;
  private bound = new Set<string>();
  private optionsKey = '';
  revision = '';

  constructor(
    private grant: StreamConnectionGrant,
    private readonly adapter: AnyStreamAdapter,
    private readonly timings: SocketTimings,
    private readonly deliver: (update: CanonicalUpdate) => void,
    private readonly logger: Logger,
  ) {}

  get id(): string {
    return this.grant.id;
  }

  /** Opens the sockets of the current grant; idempotent per plan key. */
  start(): void {
    this.apply(this.grant);
  }

  /** Brings the sockets in line with a new grant: sockets whose plan changed are reopened, gone ones closed. */
  update(grant: StreamConnectionGrant): void {
    if (grant.revision === this.revision) return;
    this.grant = grant;
    this.apply(grant);
  }

  private context(grant: StreamConnectionGrant): StreamConnectionContext<Record<string, unknown>> {
    return {
      baseUrl: grant.baseUrl,
      credentials: grant.credentials,
      options: grant.options,
      boundDevices: grant.boundDevices,
      signal: this.abort.signal,
      connectionId: grant.id,
    };
  }

  private apply(grant: StreamConnectionGrant): void {
    this.revision = grant.revision;
    const parsed = this.adapter.contract.credentials.safeParse(grant.credentials);
    if (!parsed.success) {
      this.logger.warn({ 'fleetwire.connection.id': grant.id }, 'stream connection credentials do not fit its provider; not opening it');
      this.closeAll();
      return;
    }
    const options = optionsSchemaOf(this.adapter.contract).safeParse(grant.options ?? {});
    if (!options.success) {
      this.logger.warn({ 'fleetwire.connection.id': grant.id }, "stream connection options do not fit its provider; not opening it");
      this.closeAll();
      return;
    }
    // Sockets decode with the options they were opened with: new options reopen them all.
    const optionsKey = JSON.stringify(options.data);
    if (optionsKey !== this.optionsKey) this.closeAll();
    this.optionsKey = optionsKey;
    const context = { ...this.context(grant), credentials: parsed.data, options: options.data };
    this.bound = new Set(grant.boundDevices);
    let plans: (SocketPlan | SubscriptionPlan)[];
    try {
      plans = isSubscriptionAdapter(this.adapter) ? [this.adapter.subscription(context)] : this.adapter.plan(context);
    } catch (error) {
      this.logger.warn({ 'fleetwire.connection.id': grant.id, err: error }, 'stream connection cannot be planned');
      this.closeAll();
      return;
    }
    const wanted = new Map(plans.map((plan) => [plan.key, plan]));
    for (const [key, session] of this.sockets) {
      const plan = wanted.get(key);
      // Compared in memory only (plans carry credentials): a changed address, header or credential reopens.
      if (!plan || JSON.stringify(plan) !== JSON.stringify(session.plan)) {
        this.closedReconnects += session.state.reconnects;
        session.stop();
        this.sockets.delete(key);
      }
    }
    const events: SocketEvents = {
      onReadings: (devices, receivedAtMs) => this.takeReadings(devices, receivedAtMs),
      onBadFrame: (reason) => {
        this.counters.badFrames += 1;
        // Counted always, logged at most once a minute per connection.
        if (Date.now() - this.lastBadLogAt > 60_000) {
          this.lastBadLogAt = Date.now();
          this.logger.warn({ 'fleetwire.connection.id': this.grant.id, 'fleetwire.stream.bad_frames': this.counters.badFrames }, `bad frame skipped: ${reason.slice(0, 200)}`);
        }
      },
      onNotes: (notes) => this.takeNotes(notes),
    };
    for (const [key, plan] of wanted) {
      if (this.sockets.has(key)) continue;
      const session: Session =
        isSubscriptionAdapter(this.adapter)
          ? new SubscriptionSession(this.adapter, context, plan as SubscriptionPlan, this.timings, events)
          : new SocketSession(this.adapter, context, plan as SocketPlan, this.timings, events);
      this.sockets.set(key, session);
      session.start();
    }
  }

  private takeReadings(devices: DeviceReadings[], receivedAtMs: number): void {
    const receivedAt = new Date(receivedAtMs).toISOString();
    // A broker carries every vehicle of the telemetry server; only this connection's bound devices are its data.
    const filter = isSubscriptionAdapter(this.adapter);
    for (const device of devices) {
      if (device.readings.length === 0) continue;
      if (filter && !this.bound.has(device.externalDeviceId)) {
        this.counters.unboundReadings += device.readings.length;
        if (Date.now() - this.lastUnboundLogAt > 60_000) {
          this.lastUnboundLogAt = Date.now();
          this.logger.info(
            { 'fleetwire.connection.id': this.grant.id, 'fleetwire.stream.unbound_readings': this.counters.unboundReadings },
            'readings of vehicles not bound on this connection dropped',
          );
        }
        continue;
      }
      this.counters.readingsIn += device.readings.length;
      this.deliver({
        workspaceId: this.grant.workspaceId,
        provider: this.grant.provider,
        connectionId: this.grant.id,
        externalDeviceId: device.externalDeviceId,
        source: 'stream',
        receivedAt,
        readings: device.readings,
      });
    }
  }

  /** Alerts, errors and invalid values: counted always, logged at most once a minute per connection. */
  private takeNotes(notes: FrameNotes): void {
    this.counters.invalidValues += notes.invalidValues ?? 0;
    this.counters.alerts += notes.alerts ?? 0;
    this.counters.errors += notes.errors ?? 0;
    if ((notes.alerts || notes.errors) && Date.now() - this.lastNotesLogAt > 60_000) {
      this.lastNotesLogAt = Date.now();
      const { alerts, errors, invalidValues } = this.counters;
      this.logger.info(
        { 'fleetwire.connection.id': this.grant.id, 'fleetwire.stream.alerts': alerts, 'fleetwire.stream.errors': errors, 'fleetwire.stream.invalid_values': invalidValues },
        'vehicle alerts or errors received',
      );
    }
  }

  private closeAll(): void {
    for (const session of this.sockets.values()) {
      this.closedReconnects += session.state.reconnects;
      session.stop();
    }
    this.sockets.clear();
  }

  stop(): void {
    this.abort.abort();
    this.closeAll();
  }

  /** The connection's state for core: connected when every planned socket (or the subscription) is open; which devices' own sockets are down. */
  status(pipeline: { delivered: number; coalesced: number; dropped: number; deadLettered: number; buffered: number }): StreamStatus {
    const states = [...this.sockets.values()].map((s) => s.state);
    const extreme = (pick: (s: SocketState) => number | null, which: (...values: number[]) => number) => {
      const values = states.map(pick).filter((v): v is number => v !== null);
      return values.length > 0 ? new Date(which(...values)).toISOString() : null;
    };
    const newest = (pick: (s: SocketState) => number | null) => extreme(pick, Math.max);
    const oldest = (pick: (s: SocketState) => number | null) => extreme(pick, Math.min);
    const open = states.filter((s) => s.open);
    const connected = states.length > 0 && open.length === states.length;
    const devicesDown: Record<string, string | null> = {};
    for (const session of this.sockets.values()) {
      const device = 'device' in session.plan ? session.plan.device : undefined;
      if (device !== undefined && !session.state.open) devicesDown[device] = session.state.lastErrorClass;
    }
    // The heartbeat of the sockets that are open: a connection with some sockets open is alive for their devices.
    const live = (pick: (s: SocketState) => number | null) => {
      const values = open.map(pick).filter((v): v is number => v !== null);
      return values.length > 0 ? new Date(Math.min(...values)).toISOString() : newest(pick);
    };
    const errored = states.filter((s) => s.lastErrorAt !== null).sort((a, b) => b.lastErrorAt! - a.lastErrorAt!)[0];
    return {
      connectionId: this.grant.id,
      connected,
      sockets: states.length,
      socketsOpen: open.length,
      lastMessageAt: newest((s) => s.lastMessageAt),
      // The oldest heartbeat among the open sockets: they are only as alive as the least alive of them.
      lastHeartbeatAt: live((s) => s.lastHeartbeatAt),
      connectedSince: connected ? oldest((s) => s.connectedSince) : null,
      reconnects: this.closedReconnects + states.reduce((n, s) => n + s.reconnects, 0),
      readingsIn: this.counters.readingsIn,
      delivered: pipeline.delivered,
      coalesced: pipeline.coalesced,
      dropped: pipeline.dropped,
      deadLettered: pipeline.deadLettered,
      buffered: pipeline.buffered,
      badFrames: this.counters.badFrames,
      lastErrorClass: errored?.lastErrorClass ?? null,
      lastError: errored?.lastError ?? null,
      lastErrorAt: errored?.lastErrorAt ? new Date(errored.lastErrorAt).toISOString() : null,
      nextReconnectAt: newest((s) => s.nextReconnectAt),
      devicesDown,
    };
  }
}
