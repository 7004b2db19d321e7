/**
 * Events to NATS JetStream, against the NATS server on this machine (127.0.0.1:4222, JetStream on), read back with
 * @nats-io/jetstream as a consumer: every event stored once, on its workspace's and type's subject, with Nats-Msg-Id =
 * the event id and a CloudEvent body, in log order; a republish after a crash dropped by the stream; a backlog kept
 * while NATS is unreachable and published once it answers; one publishing process at a time; the stream made when
 * missing and an existing one kept. Each test has its own stream and subject prefix, and deletes its stream.
 */
import { randomBytes } from 'node:crypto';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toCloudEvent, type StoredEvent } from '../../src/core/events/catalogue.ts';
import { eventLogHead, readLogEvents } from '../../src/core/events/event-log.ts';
import type { Database } from '../../src/core/db/database.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { metricsRegistry } from '../../src/core/metrics.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createTestDatabase } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { startSwitchableProxy } from '../support/switchable-proxy.ts';

const natsAddress = '127.0.0.1:4222';

let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
beforeAll(async () => {
  nc = await connect({ servers: [natsAddress] });
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
});
afterAll(async () => {
  await nc?.close();
});

async function until<T>(what: () => Promise<T> | T, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(value)?.slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Names {
  stream: string;
  subjectPrefix: string;
}

const newNames = (): Names => {
  const tag = randomBytes(5).toString('hex');
  return { stream: `FWTEST_${tag}`, subjectPrefix: `fwtest${tag}` };
};

/** The publisher's settings for a test: quick scans and retries, no jitter. */
const publishing = (names: Names, more: Partial<NonNullable<Parameters<typeof startTestCore>[0]>['nats']> = {}) => ({
  servers: [natsAddress],
  stream: names.stream,
  subjectPrefix: names.subjectPrefix,
  scanMs: 100,
  backoffBaseMs: 50,
  backoffCapMs: 400,
  publishTimeoutMs: 1500,
  connectTimeoutMs: 1000,
  reconnectWaitMs: 100,
  random: () => 0.5,
  ...more,
});

async function deleteStream(names: Names): Promise<void> {
  await jsm.streams.delete(names.stream).catch(() => undefined);
}

interface StoredMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  headers: Record<string, string | undefined>;
  body: ReturnType<typeof toCloudEvent>;
}

async function messageCount(names: Names): Promise<number> {
  try {
    return (await jsm.streams.info(names.stream)).state.messages;
  } catch {
    return 0;
  }
}

/** Every message the stream holds, in stream order, read by an ordered consumer. */
async function streamMessages(names: Names): Promise<StoredMessage[]> {
  const total = await messageCount(names);
  if (total === 0) return [];
  const consumer = await js.consumers.get(names.stream);
  const out: StoredMessage[] = [];
  while (out.length < total) {
    const batch = await consumer.fetch({ max_messages: total - out.length, expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      got += 1;
      out.push({
        seq: m.seq,
        subject: m.subject,
        msgId: m.headers?.get('Nats-Msg-Id'),
        headers: Object.fromEntries(['content-type', 'ce-id', 'ce-type', 'ce-source', 'ce-subject'].map((k) => [k, m.headers?.get(k)])),
        body: m.json(),
      });
    }
    if (got === 0) throw new Error(`the stream said it held ${total} messages; read ${out.length}`);
  }
  await consumer.delete().catch(() => undefined);
  return out;
}

/** Every message published to the prefix, stored or not: a JetStream publish reaches plain subscribers too. */
function watchPublishes(names: Names): { ids: string[]; firstAtMs: () => number | undefined; stop: () => void } {
  const ids: string[] = [];
  let firstAtMs: number | undefined;
  const sub: Subscription = nc.subscribe(`${names.subjectPrefix}.>`, {
    callback: (_error, msg) => {
      firstAtMs ??= Date.now();
      ids.push(msg.headers?.get('Nats-Msg-Id') ?? '?');
    },
  });
  return { ids, firstAtMs: () => firstAtMs, stop: () => sub.unsubscribe() };
}

async function loggedEvents(db: Database): Promise<StoredEvent[]> {
  return readLogEvents(db, { after: 0, through: Number.MAX_SAFE_INTEGER, limit: 100_000 });
}

async function cursorOf(db: Database, names: Names): Promise<{ cursor: number; claimedBy: string | null } | undefined> {
  const { rows } = await db.query<{ cursor: string; claimed_by: string | null }>('SELECT cursor::text, claimed_by FROM nats_publishers WHERE stream = $1', [names.stream]);
  return rows[0] ? { cursor: Number(rows[0].cursor), claimedBy: rows[0].claimed_by } : undefined;
}

/** Reads the head until every committed event is at or below it (a flush may join a read begun before them). */
async function sequenced(core: TestCore): Promise<number> {
  for (;;) {
    await core.events.flush();
    const { rows } = await core.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE position IS NULL');
    // The head is the log's, not this hub's: another process may have committed the last events.
    if (rows[0]!.n === 0) return eventLogHead(core.db);
  }
}

/** Waits until the log is sequenced and the publisher's cursor is at its head. */
async function drained(core: TestCore, names: Names): Promise<StoredEvent[]> {
  const head = await sequenced(core);
  await until(() => cursorOf(core.db, names), (c) => c !== undefined && c.cursor >= head);
  return loggedEvents(core.db);
}

/** Where the next readings are observed: each call's after the last one's, so none of them is late. */
let nextObservedMs = Date.now() - 20 * 60_000;

/** SoC readings for each vehicle, one batch after another per vehicle, vehicles side by side. */
async function ingestSocs(core: TestCore, fleet: TestFleet, values: number[]): Promise<void> {
  const start = nextObservedMs;
  nextObservedMs += (values.length + 1) * 1000;
  await Promise.all(
    fleet.vehicles.map(async (_, vehicle) => {
      for (const [i, value] of values.entries()) {
        await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value, observedAt: start + i * 1000 }], { vehicle })], { now: core.clock.now() });
      }
    }),
  );
}

async function publishedCount(duplicate: 'true' | 'false'): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric('fleetwire_nats_published_total')!.get();
  return metric.values.find((v) => v.labels.duplicate === duplicate)?.value ?? 0;
}

/** The stream holds each event exactly once, in log order, each as its CloudEvent on its subject. */
function expectStreamHolds(messages: StoredMessage[], events: StoredEvent[], names: Names): void {
  expect(messages.map((m) => m.msgId)).toEqual(events.map((e) => e.id));
  for (const [i, m] of messages.entries()) {
    const event = events[i]!;
    expect(m.subject).toBe(`${names.subjectPrefix}.${event.workspaceId}.${event.type}`);
    expect(m.body).toEqual(toCloudEvent(event));
  }
}

// Each test starts its own core processes (two for some), on PGlite too: more than the default time.
describe('publishing events to NATS JetStream', { timeout: 60_000 }, () => {
  it('stores every event once on its workspace and type subject, as a CloudEvent with Nats-Msg-Id = its id, in order', async () => {
    const names = newNames();
    const core = await startTestCore({ nats: publishing(names) });
    const raw = watchPublishes(names);
    try {
      const fleets = [await createFleet(core.db, core.secretKey, { vehicles: 3 }), await createFleet(core.db, core.secretKey, { vehicles: 2 })];
      for (const fleet of fleets) await ingestSocs(core, fleet, [15, 50, 85, 60, 10]);
      const events = await drained(core, names);
      expect(events.length).toBeGreaterThanOrEqual(25);
      expect(new Set(events.map((e) => e.type))).toEqual(new Set(['fleetwire.vehicle.state.changed', 'fleetwire.vehicle.soc.crossed']));

      const messages = await streamMessages(names);
      expectStreamHolds(messages, events, names);
      expect(messages[0]!.subject).toMatch(new RegExp(`^${names.subjectPrefix}\\.[0-9a-f-]{36}\\.fleetwire\\.vehicle\\.(state\\.changed|soc\\.crossed)$`));
      for (const [i, m] of messages.entries()) {
        const event = events[i]!;
        expect(m.headers).toEqual({
          'content-type': 'application/cloudevents+json; charset=utf-8',
          'ce-id': event.id,
          'ce-type': event.type,
          'ce-source': `/workspaces/${event.workspaceId}`,
          'ce-subject': event.subject,
        });
      }
      // Each vehicle's events in its own order.
      for (const fleet of fleets) {
        for (const vehicle of fleet.vehicles) {
          const own = messages.filter((m) => m.body.subject === `vehicles/${vehicle.id}`).map((m) => Number(m.body.sequence));
          expect(own.length).toBeGreaterThanOrEqual(5);
          expect(own).toEqual(own.map((_, i) => i + 1));
        }
      }
      // One publisher, no failure: each event went out once.
      expect(raw.ids.sort()).toEqual(events.map((e) => e.id).sort());

      // The stream it made: every subject of the prefix, on disk, a duplicate window, a week of messages.
      const { config } = await jsm.streams.info(names.stream);
      expect(config).toMatchObject({ subjects: [`${names.subjectPrefix}.>`], storage: StorageType.File, duplicate_window: nanos(120_000), max_age: nanos(7 * 86_400_000) });

      const metrics = (await core.http.request('GET', '/metrics', { token: core.serviceToken })).text;
      expect(metrics).toContain(`fleetwire_nats_backlog_events{stream="${names.stream}"} 0`);
      expect(metrics).toMatch(/fleetwire_nats_published_total\{duplicate="false"\} [1-9]/);
    } finally {
      raw.stop();
      await core.close();
      await deleteStream(names);
    }
  });

  it('publishes again what a crash left unrecorded, and the stream drops the republished events', async () => {
    const names = newNames();
    const database = await createTestDatabase();
    let core = await startTestCore({ database, nats: publishing(names) });
    const raw = watchPublishes(names);
    try {
      const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2 });
      await ingestSocs(core, fleet, [30, 40, 90]);
      const first = await drained(core, names);
      expect(await messageCount(names)).toBe(first.length);

      // A process that published but died before it moved the cursor: the next one starts from the old cursor.
      await core.close();
      await database.db.query('UPDATE nats_publishers SET cursor = 0, claimed_by = NULL, claimed_until = NULL WHERE stream = $1', [names.stream]);
      const duplicatesBefore = await publishedCount('true');
      core = await startTestCore({ database, nats: publishing(names) });
      await drained(core, names);
      await until(() => raw.ids.length, (n) => n >= first.length * 2);
      expect(await messageCount(names)).toBe(first.length);
      expect((await publishedCount('true')) - duplicatesBefore).toBe(first.length);

      // And it goes on from there: what follows is stored once, after what was there.
      await ingestSocs(core, fleet, [70, 10]);
      const all = await drained(core, names);
      expect(all.length).toBeGreaterThan(first.length);
      expectStreamHolds(await streamMessages(names), all, names);
    } finally {
      raw.stop();
      await core.close();
      await database.drop();
      await deleteStream(names);
    }
  });

  it('keeps the events while NATS is unreachable and publishes all of them, in order, once it answers', async () => {
    const names = newNames();
    const proxy = await startSwitchableProxy(4222);
    const port = new URL(proxy.url).port;
    await proxy.down();
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const core = await startTestCore({ nats: publishing(names, { servers: [`127.0.0.1:${port}`], user: 'fleetwire', password }) });
    try {
      const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2 });
      await ingestSocs(core, fleet, [20, 55, 81]);
      const head = await sequenced(core);
      expect(head).toBeGreaterThan(0);
      await until(() => core.logs.join(''), (logs) => logs.includes('NATS is unreachable'));
      // One line however many retries: failures are logged at most once a minute.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(core.logs.filter((line) => line.includes('NATS is unreachable'))).toHaveLength(1);
      expect(await messageCount(names)).toBe(0);
      expect((await core.http.request('GET', '/metrics', { token: core.serviceToken })).text).toContain(`fleetwire_nats_backlog_events{stream="${names.stream}"} ${head}`);

      await proxy.up();
      const before = await drained(core, names);
      expectStreamHolds(await streamMessages(names), before, names);

      // Lost while connected: the client reconnects by itself, and what was committed meanwhile follows in order.
      await proxy.down();
      await ingestSocs(core, fleet, [15, 90, 40]);
      await sequenced(core);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await proxy.up();
      const all = await drained(core, names);
      expect(all.length).toBeGreaterThan(before.length);
      expectStreamHolds(await streamMessages(names), all, names);
      expect(core.logs.join('')).not.toContain(password);
    } finally {
      await core.close();
      await proxy.close();
      await deleteStream(names);
    }
  });

  it('lets one core process publish at a time: a dead claim is waited out, a stopped holder is taken over at once', async () => {
    const names = newNames();
    const database = await createTestDatabase();
    // A process that claimed the stream and died.
    const { rows } = await database.db.query<{ until: Date }>(
      `INSERT INTO nats_publishers (stream, cursor, claimed_by, claimed_until) VALUES ($1, 0, 'core-that-died', now() + interval '2 seconds')
       RETURNING claimed_until AS until`,
      [names.stream],
    );
    const lapsesAtMs = rows[0]!.until.getTime();
    const raw = watchPublishes(names);
    const a = await startTestCore({ database, nats: publishing(names, { holder: 'core-a' }) });
    const b = await startTestCore({ database, nats: publishing(names, { holder: 'core-b' }) });
    let survivor: TestCore | undefined;
    try {
      const fleet = await createFleet(a.db, a.secretKey, { vehicles: 4 });
      await ingestSocs(a, fleet, [25, 50, 75, 95]);
      const first = await drained(a, names);
      expect(raw.firstAtMs()).toBeGreaterThanOrEqual(lapsesAtMs - 50);
      const holder = (await cursorOf(database.db, names))!.claimedBy;
      expect(['core-a', 'core-b']).toContain(holder);
      // Both were running, yet each event was published once.
      await until(() => raw.ids.length, (n) => n >= first.length);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(raw.ids.sort()).toEqual(first.map((e) => e.id).sort());

      const [stopping, other] = holder === 'core-a' ? [a, b] : [b, a];
      await stopping.close();
      survivor = other;
      await ingestSocs(survivor, fleet, [60, 30]);
      const all = await drained(survivor, names);
      expect((await cursorOf(database.db, names))!.claimedBy).toBe(holder === 'core-a' ? 'core-b' : 'core-a');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(raw.ids.sort()).toEqual(all.map((e) => e.id).sort());
      expectStreamHolds(await streamMessages(names), all, names);
    } finally {
      raw.stop();
      if (survivor) await survivor.close();
      else await Promise.all([a.close(), b.close()]);
      await database.drop();
      await deleteStream(names);
    }
  });

  it('keeps an existing stream as it is, and says which subjects are missing from one that cannot take the events', async () => {
    const kept = newNames();
    await jsm.streams.add({ name: kept.stream, subjects: [`${kept.subjectPrefix}.>`, `${kept.subjectPrefix}x.audit`], storage: StorageType.Memory, max_age: nanos(3600_000), duplicate_window: nanos(300_000) });
    const narrow = newNames();
    await jsm.streams.add({ name: narrow.stream, subjects: [`${narrow.subjectPrefix}.*.fleetwire.vehicle.state.changed`], storage: StorageType.Memory });
    const keptCore = await startTestCore({ nats: publishing(kept) });
    const narrowCore = await startTestCore({ nats: publishing(narrow) });
    try {
      const fleet = await createFleet(keptCore.db, keptCore.secretKey);
      await ingestSocs(keptCore, fleet, [10, 50]);
      const events = await drained(keptCore, kept);
      expectStreamHolds(await streamMessages(kept), events, kept);
      expect((await jsm.streams.info(kept.stream)).config).toMatchObject({
        subjects: [`${kept.subjectPrefix}.>`, `${kept.subjectPrefix}x.audit`],
        storage: StorageType.Memory,
        max_age: nanos(3600_000),
        duplicate_window: nanos(300_000),
      });

      const narrowFleet = await createFleet(narrowCore.db, narrowCore.secretKey);
      await ingestSocs(narrowCore, narrowFleet, [10, 50]);
      await sequenced(narrowCore);
      const said = await until(() => narrowCore.logs.find((line) => line.includes('"level":"error"') && line.includes(narrow.stream)), (line) => line !== undefined);
      expect(JSON.parse(said!).msg).toBe(
        `the JetStream stream ${narrow.stream} exists, but its subjects (${narrow.subjectPrefix}.*.fleetwire.vehicle.state.changed) do not take ` +
          `${narrow.subjectPrefix}.>: add ${narrow.subjectPrefix}.> to them, or name another stream (FLEETWIRE_NATS_STREAM)`,
      );
      expect(await messageCount(narrow)).toBe(0);
      expect(await cursorOf(narrowCore.db, narrow)).toBeUndefined();

      // Once an operator widens it, publishing starts by itself.
      const { config } = await jsm.streams.info(narrow.stream);
      await jsm.streams.update(narrow.stream, { ...config, subjects: [`${narrow.subjectPrefix}.>`] });
      const narrowEvents = await drained(narrowCore, narrow);
      expectStreamHolds(await streamMessages(narrow), narrowEvents, narrow);
    } finally {
      await keptCore.close();
      await narrowCore.close();
      await deleteStream(kept);
      await deleteStream(narrow);
    }
  });
});
