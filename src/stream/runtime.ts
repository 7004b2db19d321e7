/**
 * The stream runtime (DESIGN §7): long-lived provider websockets, normalized into canonical updates, coalesced
 * per vehicle, delivered to core's ingest endpoint. It runs as `fleetwire stream` (its own process, as many as
 * needed) or inside `npm start`. It holds no database connection; everything it knows comes from core's internal
 * API. `start` and `stop` are idempotent; `stop` closes the sockets, delivers what it can, releases its leases.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { StreamStatus } from '../canonical/stream-api.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logging.ts';
import type { StreamAdapter } from '../providers/stream-adapter.ts';
import { Coalescer } from './coalescer.ts';
import { planLeases } from './connection-directory.ts';
import { createCoreClient, type CoreClient } from './core-client.ts';
import { DeliveryPipeline } from './delivery.ts';
import type { SocketTimings } from './socket-session.ts';
import { StreamConnection } from './stream-connection.ts';
import { streamMetrics } from './metrics.ts';

export interface StreamRuntimeOptions {
  coreUrl: string;
  serviceToken: string;
  logger: Logger;
  adapters: ReadonlyMap<string, StreamAdapter>;
  /** Names this process in leases and status; host:pid:random by default. */
  holder?: string;
  /** How often to ask core which connections to hold (and renew leases). */
  refreshMs: number;
  /** How often to report connection status to core. */
  statusMs: number;
  coalesceMs: number;
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
  connection: { coreUrl: string; serviceToken: string; logger: Logger; adapters: ReadonlyMap<string, StreamAdapter> },
): StreamRuntimeOptions {
  return {
    ...defaultStreamTimings,
    ...connection,
    coalesceMs: config.stream.coalesceMs,
    delivery: { ...defaultStreamTimings.delivery, bufferReadings: config.stream.bufferReadings },
  };
}

export interface StreamRuntime {
  readonly holder: string;
  readonly connections: ReadonlyMap<string, StreamConnection>;
  readonly pipeline: DeliveryPipeline;
  readonly coalescer: Coalescer;
  /** A held connection's status as it is reported to core (sockets, reconnects, delivery counts). */
  status(connectionId: string): StreamStatus | undefined;
  /** Runs one refresh now (tests, and the first start). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

export function startStreamRuntime(options: StreamRuntimeOptions, client: CoreClient = createCoreClient({ coreUrl: options.coreUrl, serviceToken: options.serviceToken })): StreamRuntime {
  const holder = options.holder ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const logger = options.logger.child({ component: 'stream', 'fleetwire.stream.holder': holder });
  const pipeline = new DeliveryPipeline(client, options.delivery, logger);
  const coalescer = new Coalescer(options.coalesceMs, (update) => pipeline.enqueue(update));
  const connections = new Map<string, StreamConnection>();
  let stopped = false;
  let refreshing: Promise<void> | undefined;
  let reporting: Promise<void> | undefined;

  pipeline.start();
  coalescer.start();

  async function refreshOnce(): Promise<void> {
    const list = await client.listStreamConnections();
    const items = list.items.filter((item) => options.adapters.has(item.provider));
    const plan = planLeases(holder, items, list.holders, new Set(connections.keys()));
    const answer = await client.leases(holder, plan.wanted, plan.release);
    const granted = new Set(answer.granted);
    for (const [id, connection] of connections) {
      if (!granted.has(id)) {
        connection.stop();
        connections.delete(id);
        logger.info({ 'fleetwire.connection.id': id }, 'stream connection closed (removed, disabled or handed over)');
      }
    }
    for (const item of items) {
      if (!granted.has(item.id)) continue;
      const running = connections.get(item.id);
      if (running) {
        running.update(item);
        continue;
      }
      const connection = new StreamConnection(item, options.adapters.get(item.provider)!, options.sockets, (update) => coalescer.add(update), logger);
      connections.set(item.id, connection);
      connection.start();
      logger.info({ 'fleetwire.connection.id': item.id, 'fleetwire.provider': item.provider, 'fleetwire.stream.devices': item.boundDevices.length }, 'stream connection opened');
    }
  }

  const refresh = () =>
    (refreshing ??= refreshOnce()
      .catch((error: unknown) => logger.warn({ err: error }, `could not refresh stream connections: ${(error as Error).message}`))
      .finally(() => {
        refreshing = undefined;
      }));

  function statusOf(connection: StreamConnection): StreamStatus {
    const delivery = pipeline.statsFor(connection.id);
    return connection.status({
      delivered: delivery.delivered,
      dropped: delivery.dropped,
      buffered: delivery.buffered + coalescer.heldFor(connection.id),
      coalesced: coalescer.coalescedFor(connection.id),
    });
  }
  const statuses = () => [...connections.values()].map(statusOf);

  const report = () =>
    (reporting ??= (async () => {
      const all = statuses();
      streamMetrics.observe(all, pipeline, coalescer);
      if (all.length > 0) await client.reportStatus(holder, all);
    })()
      .catch((error: unknown) => logger.warn({ err: error }, `could not report stream status: ${(error as Error).message}`))
      .finally(() => {
        reporting = undefined;
      }));

  const refreshTimer = setInterval(() => void refresh(), options.refreshMs);
  const statusTimer = setInterval(() => void report(), options.statusMs);
  refreshTimer.unref();
  statusTimer.unref();
  void refresh();

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
    refresh,
    stop: () =>
      (stopping ??= (async () => {
        if (stopped) return;
        stopped = true;
        clearInterval(refreshTimer);
        clearInterval(statusTimer);
        await refreshing;
        const held = [...connections.keys()];
        for (const connection of connections.values()) connection.stop();
        coalescer.stop();
        await pipeline.stop(5_000);
        await report();
        connections.clear();
        await client.leases(holder, [], held, true).catch(() => undefined);
        await client.close();
        logger.info('stream runtime stopped');
      })()),
  };
}
