/**
 * The stream runtime (DESIGN §7): long-lived provider websockets and broker subscriptions, normalized into canonical updates, coalesced
 * per vehicle, delivered to core's ingest endpoint. It runs as `fleetwire stream` (its own process, as many as
 * needed) or inside `npm start`. It holds no database connection; everything it knows comes from core's internal
 * API. `start` and `stop` are idempotent; `stop` closes the sockets, delivers what it can, releases its leases.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { StreamDirectoryEntry, StreamStatus } from '../canonical/stream-api.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logging.ts';
import type { AnyStreamAdapter } from '../providers/stream-adapter.ts';
import { Coalescer } from './coalescer.ts';
import { planLeases } from './connection-directory.ts';
import { CoreAnswerError, createCoreClient, type CoreClient, type LeaseAnswer } from './core-client.ts';
import { DeliveryPipeline } from './delivery.ts';
import type { SocketTimings } from './socket-session.ts';
import { StreamConnection } from './stream-connection.ts';
import { streamMetrics } from './metrics.ts';

export interface StreamRuntimeOptions {
  coreUrl: string;
  serviceToken: string;
  logger: Logger;
  adapters: ReadonlyMap<string, AnyStreamAdapter>;
  /** Names this process in leases and status; host:pid:random by default. */
  holder?: string;
  /** How often to ask core which connections to hold (and renew leases); at most a third of the lease time. */
  refreshMs: number;
  /** How often to report connection status to core. */
  statusMs: number;
  coalesceMs: number;
  /** Core unreachable, or delivery failing, for this long makes the process not ready (default 30 s). */
  notReadyAfterMs?: number;
  delivery: { flushMs: number; maxBatchUpdates: number; maxBatchReadings: number; bufferReadings: number; retryBaseMs: number; retryCapMs: number };
  sockets: SocketTimings;
}

export const defaultStreamTimings = {
  refreshMs: 10_000,
  statusMs: 5_000,
  coalesceMs: 1_000,
  delivery: { flushMs: 250, maxBatchUpdates: 1000, maxBatchReadings: 20_000, bufferReadings: 100_000, retryBaseMs: 250, retryCapMs: 5_000 },
  sockets: { heartbeatMs: 15_000, deadAfterMs: 45_000, handshakeTimeoutMs: 10_000, backoffBaseMs: 1_000, backoffCapMs: 60_000 },
} as const;

/** The options of a runtime started from configuration: default timings, the configured window and buffer. */
export function configuredStreamOptions(
  config: Pick<Config, 'stream'>,
  connection: { coreUrl: string; serviceToken: string; logger: Logger; adapters: ReadonlyMap<string, AnyStreamAdapter> },
): StreamRuntimeOptions {
  return {
    ...defaultStreamTimings,
    ...connection,
    coalesceMs: config.stream.coalesceMs,
    delivery: { ...defaultStreamTimings.delivery, bufferReadings: config.stream.bufferReadings },
  };
}

/** Whether the process can do its job now: deliver to core and hold its connections. */
export interface StreamReadiness {
  ready: boolean;
  reasons: { code: string; detail: string }[];
}

export interface StreamRuntime {
  readonly holder: string;
  readonly connections: ReadonlyMap<string, StreamConnection>;
  readonly pipeline: DeliveryPipeline;
  readonly coalescer: Coalescer;
  /** A held connection's status as it is reported to core (sockets, reconnects, delivery counts). */
  status(connectionId: string): StreamStatus | undefined;
  /** Ready when core answered lately and delivery is not failing (see `/readyz`). */
  readiness(): StreamReadiness;
  /** Runs one refresh now (tests, and the first start). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** Core unreachable, or delivery failing, for this long makes the process not ready, unless told otherwise. */
export const defaultNotReadyAfterMs = 30_000;
/** Pages of the directory read per refresh at most (500 connections each). */
const directoryPagesLimit = 200;

/** Why a held connection was not granted again, as its close is logged. */
function closeReason(answer: LeaseAnswer, id: string): string {
  if (answer.unreadable.includes(id)) return 'its credentials cannot be decrypted';
  if (answer.gone?.includes(id)) return 'it was deleted';
  return 'removed, disabled or handed over';
}

export interface StreamRuntimeHooks {
  /** Core refused the service token: nothing this process does can succeed until its configuration is fixed. */
  onFatal?: (error: CoreAnswerError) => void;
}

export function startStreamRuntime(
  options: StreamRuntimeOptions,
  client: CoreClient = createCoreClient({ coreUrl: options.coreUrl, serviceToken: options.serviceToken }),
  hooks: StreamRuntimeHooks = {},
): StreamRuntime {
  const holder = options.holder ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const logger = options.logger.child({ component: 'stream', 'fleetwire.stream.holder': holder });
  let fatal: CoreAnswerError | undefined;
  const onFatal = (error: CoreAnswerError) => {
    if (fatal) return;
    fatal = error;
    logger.error(
      { 'http.response.status_code': error.status },
      `core refused the service token (${error.status} ${error.code}): FLEETWIRE_SERVICE_TOKEN is not the token core was started with`,
    );
    hooks.onFatal?.(error);
  };
  const pipeline = new DeliveryPipeline(client, options.delivery, logger, { holder, onFatal });
  const coalescer = new Coalescer(options.coalesceMs, (update) => pipeline.enqueue(update));
  const connections = new Map<string, StreamConnection>();
  /** Until when (performance.now()) each held connection's lease runs, counted from when its renewal was asked for. */
  const leaseUntil = new Map<string, number>();
  let leaseTtlMs = 30_000;
  let lastContactAt = performance.now();
  let contacted = false;
  let stopped = false;
  let refreshing: Promise<void> | undefined;
  let reporting: Promise<void> | undefined;

  pipeline.start();
  coalescer.start();

  const close = (id: string, why: string) => {
    const connection = connections.get(id);
    if (!connection) return;
    connection.stop();
    connections.delete(id);
    leaseUntil.delete(id);
    logger.info({ 'fleetwire.connection.id': id }, `stream connection closed (${why})`);
  };

  async function readDirectory() {
    const entries: StreamDirectoryEntry[] = [];
    let page = await client.listStreamConnections(holder);
    entries.push(...page.items);
    for (let pages = 1; page.nextCursor !== null && pages < directoryPagesLimit; pages += 1) {
      page = await client.listStreamConnections(holder, page.nextCursor);
      entries.push(...page.items);
    }
    return { entries: entries.filter((e) => options.adapters.has(e.provider)), total: page.total, holders: page.holders, ttlSeconds: page.leaseTtlSeconds };
  }

  async function refreshOnce(): Promise<void> {
    const directory = await readDirectory();
    leaseTtlMs = directory.ttlSeconds * 1000;
    const plan = planLeases(holder, directory.entries, directory.total, directory.holders, new Set(connections.keys()));
    const askedAt = performance.now();
    const answer = await client.leases(holder, plan.wanted, plan.release);
    lastContactAt = performance.now();
    contacted = true;
    const granted = new Map(answer.granted.filter((g) => options.adapters.has(g.provider)).map((g) => [g.id, g]));
    for (const id of connections.keys()) {
      if (!granted.has(id)) close(id, closeReason(answer, id));
    }
    for (const grant of granted.values()) {
      leaseUntil.set(grant.id, askedAt + answer.ttlSeconds * 1000);
      const running = connections.get(grant.id);
      if (running) {
        running.update(grant);
        continue;
      }
      const connection = new StreamConnection(grant, options.adapters.get(grant.provider)!, options.sockets, (update) => coalescer.add(update), logger);
      connections.set(grant.id, connection);
      connection.start();
      logger.info({ 'fleetwire.connection.id': grant.id, 'fleetwire.provider': grant.provider, 'fleetwire.stream.devices': grant.boundDevices.length }, 'stream connection opened');
    }
  }

  const refresh = () =>
    (refreshing ??= refreshOnce()
      .catch((error: unknown) => {
        if (error instanceof CoreAnswerError && error.kind === 'unauthorized') onFatal(error);
        else logger.warn({ err: error }, `could not refresh stream connections: ${(error as Error).message}`);
      })
      .finally(() => {
        refreshing = undefined;
      }));

  /**
   * A connection whose lease ran out without a renewal (core cannot be reached, or would not renew it) is closed at
   * once: by now another process may hold it, and a device must never be connected twice for long.
   */
  const fence = () => {
    const now = performance.now();
    for (const [id, until] of leaseUntil) if (now >= until) close(id, 'its lease ran out without a renewal');
  };

  function statusOf(connection: StreamConnection): StreamStatus {
    const delivery = pipeline.statsFor(connection.id);
    return connection.status({
      delivered: delivery.delivered,
      dropped: delivery.dropped,
      deadLettered: delivery.deadLettered,
      buffered: delivery.buffered + coalescer.heldFor(connection.id),
      coalesced: coalescer.coalescedFor(connection.id),
    });
  }
  const statuses = () => [...connections.values()].map(statusOf);

  const report = () =>
    (reporting ??= (async () => {
      const all = statuses();
      streamMetrics.observe(all, pipeline, coalescer, [...connections.values()].map((c) => c.counters));
      if (all.length > 0) await client.reportStatus(holder, all);
    })()
      .catch((error: unknown) => {
        if (error instanceof CoreAnswerError && error.kind === 'unauthorized') onFatal(error);
        else logger.warn({ err: error }, `could not report stream status: ${(error as Error).message}`);
      })
      .finally(() => {
        reporting = undefined;
      }));

  // Renew well within the lease: a third of it, or the configured refresh if that is sooner.
  let refreshTimer: NodeJS.Timeout | undefined;
  const scheduleRefresh = () => {
    refreshTimer = setTimeout(
      () => {
        if (stopped || fatal) return;
        void refresh().finally(scheduleRefresh);
      },
      Math.min(options.refreshMs, Math.max(1000, leaseTtlMs / 3)),
    );
    refreshTimer.unref();
  };
  const statusTimer = setInterval(() => void report(), options.statusMs);
  const fenceTimer = setInterval(fence, 500);
  statusTimer.unref();
  fenceTimer.unref();
  void refresh().finally(scheduleRefresh);

  let stopping: Promise<void> | undefined;
  return {
    holder,
    connections,
    pipeline,
    coalescer,
    status(connectionId) {
      const connection = connections.get(connectionId);
      return connection && statusOf(connection);
    },
    readiness() {
      const notReadyAfterMs = options.notReadyAfterMs ?? defaultNotReadyAfterMs;
      const reasons: StreamReadiness['reasons'] = [];
      if (fatal) reasons.push({ code: 'service_token_refused', detail: `core refused the service token (${fatal.status}); fix FLEETWIRE_SERVICE_TOKEN` });
      if (!contacted || performance.now() - lastContactAt > notReadyAfterMs) {
        reasons.push({ code: 'core_unreachable', detail: contacted ? `core has not answered a lease renewal for ${Math.round(notReadyAfterMs / 1000)} s` : 'core has not answered yet' });
      }
      if (pipeline.failingSince !== null && Date.now() - pipeline.failingSince > notReadyAfterMs) {
        reasons.push({ code: 'delivery_failing', detail: `delivery to core has failed for ${Math.round((Date.now() - pipeline.failingSince) / 1000)} s: ${pipeline.lastError ?? ''}` });
      }
      if (pipeline.totals.buffered >= options.delivery.bufferReadings * 0.9) {
        reasons.push({ code: 'buffer_full', detail: 'the delivery buffer is full; the oldest readings are being dropped' });
      }
      if (stopped) reasons.push({ code: 'stopping', detail: 'the process is stopping' });
      return { ready: reasons.length === 0, reasons };
    },
    refresh,
    stop: () =>
      (stopping ??= (async () => {
        if (stopped) return;
        stopped = true;
        clearTimeout(refreshTimer);
        clearInterval(statusTimer);
        clearInterval(fenceTimer);
        await refreshing;
        const held = [...connections.keys()];
        for (const connection of connections.values()) connection.stop();
        coalescer.stop();
        await pipeline.stop(5_000);
        await report();
        connections.clear();
        leaseUntil.clear();
        if (!fatal) await client.leases(holder, [], held, true).catch(() => undefined);
        await client.close();
        logger.info('stream runtime stopped');
      })()),
  };
}
