/**
 * One provider connection held by this stream process: the sockets its adapter plans (Traccar one, Tesla Fleet
 * Telemetry one per VIN), kept in line with the connection's grant from core (new devices, new credentials), and
 * the counters its status report is made of. Readings become canonical updates here, stamped with the frame's
 * arrival time, and go to the pipeline.
 */
import type { StreamConnectionGrant, StreamStatus } from '../canonical/stream-api.ts';
import type { CanonicalUpdate } from '../canonical/update.ts';
import type { Logger } from '../logging.ts';
import { optionsSchemaOf } from '../providers/provider.ts';
import type { StreamAdapter, StreamConnectionContext } from '../providers/stream-adapter.ts';
import { SocketSession, type SocketState, type SocketTimings } from './socket-session.ts';

export interface ConnectionCounters {
  readingsIn: number;
  badFrames: number;
}

export class StreamConnection {
  private sockets = new Map<string, SocketSession>();
  private abort = new AbortController();
  readonly counters: ConnectionCounters = { readingsIn: 0, badFrames: 0 };
  private closedReconnects = 0;
  private lastBadLogAt = 0;
  private optionsKey = '';
  revision = '';

  constructor(
    private grant: StreamConnectionGrant,
    private readonly adapter: StreamAdapter,
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
    return { baseUrl: grant.baseUrl, credentials: grant.credentials, options: grant.options, boundDevices: grant.boundDevices, signal: this.abort.signal };
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
    let plans;
    try {
      plans = this.adapter.plan(context);
    } catch (error) {
      this.logger.warn({ 'fleetwire.connection.id': grant.id, err: error }, 'stream connection cannot be planned');
      this.closeAll();
      return;
    }
    const wanted = new Map(plans.map((plan) => [plan.key, plan]));
    for (const [key, session] of this.sockets) {
      const plan = wanted.get(key);
      if (!plan || plan.url !== session.plan.url || JSON.stringify(plan.headers) !== JSON.stringify(session.plan.headers)) {
        this.closedReconnects += session.state.reconnects;
        session.stop();
        this.sockets.delete(key);
      }
    }
    for (const [key, plan] of wanted) {
      if (this.sockets.has(key)) continue;
      const session = new SocketSession(this.adapter, context, plan, this.timings, {
        onReadings: (devices, receivedAtMs) => {
          const receivedAt = new Date(receivedAtMs).toISOString();
          for (const device of devices) {
            if (device.readings.length === 0) continue;
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
        },
        onBadFrame: (reason) => {
          this.counters.badFrames += 1;
          // Counted always, logged at most once a minute per connection.
          if (Date.now() - this.lastBadLogAt > 60_000) {
            this.lastBadLogAt = Date.now();
            this.logger.warn({ 'fleetwire.connection.id': this.grant.id, 'fleetwire.stream.bad_frames': this.counters.badFrames }, `bad frame skipped: ${reason.slice(0, 200)}`);
          }
        },
      });
      this.sockets.set(key, session);
      session.start();
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

  /** The connection's state for core: connected when every planned socket is open. */
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
    const errored = states.filter((s) => s.lastErrorAt !== null).sort((a, b) => b.lastErrorAt! - a.lastErrorAt!)[0];
    return {
      connectionId: this.grant.id,
      connected,
      sockets: states.length,
      socketsOpen: open.length,
      lastMessageAt: newest((s) => s.lastMessageAt),
      // The oldest heartbeat among the sockets: the connection is only as alive as its least alive socket.
      lastHeartbeatAt: connected ? oldest((s) => s.lastHeartbeatAt) : newest((s) => s.lastHeartbeatAt),
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
    };
  }
}
