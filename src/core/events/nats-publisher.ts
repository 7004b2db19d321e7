/**
 * Publishes every event of the log to NATS JetStream (docs.nats.io, "JetStream" and its "Message Deduplication"), as
 * CloudEvents in JSON (the CloudEvents NATS protocol binding, structured mode), to `<prefix>.<workspace id>.<event
 * type>` with `Nats-Msg-Id` = the event id.
 *
 * One core process at a time publishes a stream: a claim it renews with every page, taken over when it lapses. It
 * reads a page of events after its cursor in position order, publishes the whole page at once on one connection, and
 * moves the cursor past the acknowledged front of the page, fenced by its claim and the cursor it started from: at
 * least once, and what is published again after a crash or a takeover is dropped by the stream's duplicate window.
 * Every message of a page but the first expects the stream's last message id to be the event before it, so a message
 * lost with a dropped connection makes those after it fail instead of being stored ahead of it: the stream keeps the
 * log's order. While NATS is unreachable the events wait in the log (kept for each workspace's eventRetentionDays) and
 * connecting is retried with backoff; once connected, the client reconnects by itself.
 */
import { JetStreamApiError, jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { connect, headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../logging.ts';
import type { Database } from '../db/database.ts';
import { recordNatsPublished, recordNatsPublishFailures, recordNatsSkipped } from '../metrics.ts';
import { toCloudEvent, type StoredEvent } from './catalogue.ts';
import type { EventHub } from './event-hub.ts';
import { readLogEvents } from './event-log.ts';
import { advanceNatsCursor, claimNatsCursor, releaseNatsCursor } from './nats-cursor.ts';
import { ensureEventStream, EventStreamMismatch, eventSubject } from './nats-stream.ts';

export interface NatsPublisherOptions {
  db: Database;
  hub: EventHub;
  logger: Logger;
  /** This process's name in claims. */
  holder: string;
  /** host:port of each server. Addresses are logged: credentials go in `user` and `password`, or `token`. */
  servers: readonly string[];
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  stream: string;
  subjectPrefix: string;
  claimMs?: number;
  scanMs?: number;
  /** Events read, and published at once, per page. */
  pageSize?: number;
  publishTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** The client's wait between reconnect attempts once it has been connected. */
  reconnectWaitMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** For a stream made here; it must outlast a takeover (`claimMs`) for a republish to be dropped. */
  duplicateWindowMs?: number;
  /** For a stream made here. */
  maxAgeMs?: number;
  random?: () => number;
}

export interface NatsPublisher {
  start(): void;
  stop(): Promise<void>;
}

type Stage = 'connect' | 'stream' | 'publish';

/** The server's answer to an expected last message id that is not the stream's (JSStreamWrongLastMsgIDErrF). */
const wrongLastMsgIdCode = 10_070;

/**
 * A page whose first failure is an expectation that another writer's message broke: everything before it is stored
 * in order, and the rest is published again straight away (no backoff: nothing is wrong with NATS).
 */
const isInterleaved = (error: unknown, index: number) => index > 0 && error instanceof JetStreamApiError && error.code === wrongLastMsgIdCode;

export function createNatsPublisher(options: NatsPublisherOptions): NatsPublisher {
  const claimMs = options.claimMs ?? 30_000;
  const scanMs = options.scanMs ?? 1000;
  const pageSize = options.pageSize ?? 500;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const baseMs = options.backoffBaseMs ?? 500;
  const capMs = options.backoffCapMs ?? 30_000;
  const random = options.random ?? Math.random;
  const publishMarginMs = Math.min(publishTimeoutMs, claimMs / 2);
  const { db, logger, stream, holder } = options;
  const where = { 'messaging.system': 'nats', 'fleetwire.nats.stream': stream, 'fleetwire.nats.servers': options.servers.join(',') };

  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let connected = false;
  let streamChecked = false;
  let started = false;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stage: Stage = 'connect';
  let failures = 0;
  let notBefore = 0;
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  const lastLogAt = new Map<string, number>();

  const backoff = () => Math.round(Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1)) * (0.5 + random()));

  /** Logs `kind` at most once a minute: a long outage is one line a minute, not one a retry. */
  const logOncePerMinute = (kind: string, log: () => void) => {
    const at = Date.now();
    if (at - (lastLogAt.get(kind) ?? 0) < 60_000) return;
    lastLogAt.set(kind, at);
    log();
  };

  function report(error: unknown): void {
    if (error instanceof EventStreamMismatch) {
      logOncePerMinute('mismatch', () => logger.error({ ...where }, error.message));
      return;
    }
    const said: Record<Stage, string> = {
      connect: 'NATS is unreachable: events wait in the log and are published once it answers',
      stream: 'the JetStream stream for events could not be checked or made; it is tried again',
      publish: 'publishing events to NATS failed; what was not acknowledged is published again',
    };
    logOncePerMinute(stage, () => logger.warn({ ...where, err: error }, said[stage]));
  }

  async function watch(connection: NatsConnection): Promise<void> {
    void connection.closed().then((error) => {
      if (nc !== connection) return;
      nc = undefined;
      js = undefined;
      connected = false;
      if (stopped) return;
      if (error) logOncePerMinute('closed', () => logger.warn({ ...where, err: error }, 'the NATS connection closed; connecting again'));
      kick();
    });
    try {
      for await (const status of connection.status()) {
        if (status.type === 'disconnect') {
          connected = false;
          logOncePerMinute('disconnect', () => logger.warn({ ...where }, 'NATS connection lost; the client reconnects and events wait in the log'));
        } else if (status.type === 'reconnect') {
          connected = true;
          // The server may be another one, or one that lost its state.
          streamChecked = false;
          notBefore = 0;
          kick();
        }
      }
    } catch {
      // The iterator ends with the connection, which closed() above handles.
    }
  }

  async function openConnection(): Promise<void> {
    const connection = await connect({
      servers: [...options.servers],
      name: `fleetwire ${holder}`,
      user: options.user,
      pass: options.password,
      token: options.token,
      timeout: connectTimeoutMs,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectWaitMs ?? 2000,
      waitOnFirstConnect: false,
    });
    if (stopped) {
      await connection.close().catch(() => undefined);
      return;
    }
    nc = connection;
    js = jetstream(connection, { timeout: publishTimeoutMs });
    connected = true;
    streamChecked = false;
    void watch(connection);
    logger.info({ ...where }, 'connected to NATS: publishing events');
  }

  function cloudEventHeaders(event: StoredEvent): MsgHdrs {
    const h = headers();
    h.set('content-type', 'application/cloudevents+json; charset=utf-8');
    h.set('ce-specversion', '1.0');
    h.set('ce-id', event.id);
    h.set('ce-type', event.type);
    h.set('ce-source', `/workspaces/${event.workspaceId}`);
    h.set('ce-subject', event.subject);
    return h;
  }

  /** Publishes a page at once; answers how many of its front were acknowledged and the first failure, if any. */
  async function publishPage(client: JetStreamClient, events: StoredEvent[]): Promise<{ acknowledged: number; error?: unknown }> {
    const settled = await Promise.allSettled(
      events.map((event, i) =>
        client.publish(eventSubject(options.subjectPrefix, event.workspaceId, event.type), JSON.stringify(toCloudEvent(event)), {
          msgID: event.id,
          timeout: publishTimeoutMs,
          headers: cloudEventHeaders(event),
          expect: { streamName: stream, ...(i > 0 ? { lastMsgID: events[i - 1]!.id } : {}) },
        }),
      ),
    );
    const failed = settled.findIndex((s) => s.status === 'rejected');
    const front = (failed === -1 ? settled : settled.slice(0, failed)) as PromiseFulfilledResult<PubAck>[];
    recordNatsPublished(front.length, front.filter((s) => s.value.duplicate).length);
    recordNatsPublishFailures(settled.filter((s) => s.status === 'rejected').length);
    return failed === -1 ? { acknowledged: front.length } : { acknowledged: front.length, error: (settled[failed] as PromiseRejectedResult).reason };
  }

  async function publishBacklog(client: JetStreamClient): Promise<void> {
    while (!stopped && connected) {
      const through = options.hub.head();
      const claimedAt = Date.now();
      const cursor = await claimNatsCursor(db, { stream, holder, claimMs });
      if (cursor === undefined || cursor >= through) return;
      const events = await readLogEvents(db, { after: cursor, through, limit: pageSize });
      // Every publish of a page goes out inside the claim; after a slow read the claim is renewed first.
      if (Date.now() + publishMarginMs >= claimedAt + claimMs) continue;
      const end = events.length < pageSize ? through : events[events.length - 1]!.position;
      const { acknowledged, error } = await publishPage(client, events);
      const reached = acknowledged === events.length ? end : events[acknowledged]!.position - 1;
      if (reached > cursor) {
        if (!(await advanceNatsCursor(db, { stream, holder, from: cursor, to: reached, claimMs }))) return;
        // Positions passed without an event: removed before they were published.
        const skipped = reached - cursor - acknowledged;
        if (skipped > 0) {
          recordNatsSkipped(skipped);
          logOncePerMinute('skipped', () =>
            logger.warn({ ...where, 'fleetwire.nats.skipped_events': skipped }, 'events were removed from the log (retention, a deleted workspace) before they were published to NATS'),
          );
        }
      }
      if (error !== undefined && !isInterleaved(error, acknowledged)) throw error;
    }
  }

  async function round(): Promise<void> {
    stage = 'connect';
    if (!nc) await openConnection();
    const connection = nc;
    const client = js;
    // Not connected: the client is reconnecting and tells when it is back.
    if (!connection || !client || !connected) return;
    if (!streamChecked) {
      stage = 'stream';
      const made = await ensureEventStream(connection, {
        name: stream,
        subjectPrefix: options.subjectPrefix,
        duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
        maxAgeMs: options.maxAgeMs ?? 7 * 86_400_000,
        timeoutMs: publishTimeoutMs,
      });
      streamChecked = true;
      if (made.created) logger.info({ ...where }, 'created the JetStream stream for events');
      if (made.duplicateWindowMs < claimMs + publishTimeoutMs) {
        logger.warn({ ...where, 'fleetwire.nats.duplicate_window_ms': made.duplicateWindowMs }, "the stream's duplicate window is shorter than a publisher takeover: a takeover may store an event twice");
      }
    }
    stage = 'publish';
    await publishBacklog(client);
  }

  function kick(): void {
    if (!started || stopped) return;
    if (running) {
      again = true;
      return;
    }
    if (Date.now() < notBefore) return;
    running = round()
      .then(() => {
        failures = 0;
      })
      .catch((error: unknown) => {
        failures += 1;
        notBefore = Date.now() + backoff();
        if (!stopped) report(error);
      })
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          setImmediate(kick);
        }
      });
  }

  return {
    start() {
      if (started || stopped) return;
      started = true;
      unsubscribe = options.hub.onAdvance(() => kick());
      timer = setInterval(kick, scanMs);
      timer.unref();
      kick();
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        clearInterval(timer);
        unsubscribe?.();
        await running;
        if (started) await releaseNatsCursor(db, { stream, holder }).catch(() => undefined);
        const connection = nc;
        nc = undefined;
        js = undefined;
        connected = false;
        await connection?.close().catch(() => undefined);
      })();
      return stopping;
    },
  };
}
