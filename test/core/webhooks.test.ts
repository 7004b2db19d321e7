/**
 * Webhooks (DESIGN §10): subscriptions with a secret shown once; deliveries signed as Standard Webhooks says (checked
 * with the `standardwebhooks` package as it is), at least once and in order per vehicle, retried with backoff while
 * the receiver fails, ended by 410, never following a redirect, timing out a receiver that does not answer, paused
 * after failing too long, and no bad receiver holding up another subscription; pause, resume and replay; targets on
 * private addresses refused when subscribing and again when connecting.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isSpecialAddress } from '../../src/core/events/webhook-targets.ts';
import { createEventHub } from '../../src/core/events/event-hub.ts';
import { createWebhookDispatcher } from '../../src/core/events/webhook-dispatcher.ts';
import { createWebhook, openSigningSecret } from '../../src/core/events/webhooks.ts';
import { createLogger } from '../../src/logging.ts';
import { rotateCredentialKey } from '../../src/core/registry/credential-key.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A receiver on loopback; `answer` decides each response (200 by default): after `delayMs` (never, if Infinity), and
 * with `trickle` its headers and then a byte of body every 100 ms, never ending.
 */
async function startReceiver(
  answer: (r: Received, n: number) => { status: number; headers?: Record<string, string>; delayMs?: number; trickle?: boolean } = () => ({ status: 200 }),
) {
  const received: Received[] = [];
  let n = 0;
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const r = { path: request.url ?? '/', headers: request.headers, body };
      received.push(r);
      const a = answer(r, (n += 1));
      const send = () => {
        if (response.destroyed) return;
        response.writeHead(a.status, a.headers);
        if (!a.trickle) {
          response.end('ok');
          return;
        }
        const drip = setInterval(() => response.write('.'), 100).unref();
        response.on('close', () => clearInterval(drip));
      };
      if (a.delayMs === Infinity) return;
      if (a.delayMs) setTimeout(send, a.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `what` until `ok`; every `everyMs`, so a probe that queries the (in-process) database does not crowd it. */
async function until<T>(what: () => Promise<T> | T, ok: (value: T) => boolean, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(value)?.slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

let core: TestCore;
beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

const path = (fleet: TestFleet, suffix = '') => `/v1/workspaces/${fleet.workspaceId}/webhooks${suffix}`;
const socs = (fleet: TestFleet, vehicle: number, values: number[], startMs: number) =>
  values.map((value, i) => update(fleet, [{ signal: 'soc_pct', value, observedAt: startMs + i * 1000 }], { vehicle }));

async function subscribe(fleet: TestFleet, url: string, types = ['fleetwire.vehicle.state.changed']) {
  const answer = await core.http.admin('POST', path(fleet), { url, types, description: 'depot planner' });
  expect(answer.status).toBe(201);
  return answer.body as { id: string; secret: string };
}

describe('webhook subscriptions', () => {
  it('shows the signing secret once, and lists subscriptions with their health but never the secret', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const created = await subscribe(fleet, 'http://127.0.0.1:9/hook');
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const listed = await core.http.admin('GET', path(fleet));
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(1);
    expect(listed.body.items[0]).toMatchObject({ id: created.id, url: 'http://127.0.0.1:9/hook', types: ['fleetwire.vehicle.state.changed'], status: 'active', description: 'depot planner' });
    expect(listed.body.items[0].health).toMatchObject({ backlog: 0, lastSuccessAt: null, failingSince: null });
    expect(listed.text).not.toContain(created.secret);
    expect((await core.http.admin('GET', path(fleet, `/${created.id}`))).text).not.toContain(created.secret);
    const { rows } = await core.db.query<{ secret_ciphertext: string }>('SELECT secret_ciphertext FROM webhook_subscriptions WHERE id = $1', [created.id]);
    expect(rows[0]!.secret_ciphertext).not.toContain(created.secret.slice(6, 20));

    // A workspace key reads nothing of them.
    const key = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, {})).body.key as string;
    expect((await core.http.request('GET', path(fleet), { token: key })).status).toBe(403);
    expect((await core.http.admin('DELETE', path(fleet, `/${created.id}`))).status).toBe(204);
    expect((await core.http.admin('GET', path(fleet, `/${created.id}`))).status).toBe(404);
  });

  it('answers bad subscriptions with specific problems', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const cases: [unknown, number, string][] = [
      [{ url: 'http://127.0.0.1:9/', types: ['fleetwire.vehicle.exploded'] }, 400, 'unknown_event_type'],
      [{ url: 'ftp://example.invalid/', types: ['fleetwire.vehicle.state.changed'] }, 400, 'invalid_webhook_url'],
      [{ url: 'not a url', types: ['fleetwire.vehicle.state.changed'] }, 400, 'invalid_webhook_url'],
      [{ url: 'https://user:pw@example.invalid/', types: ['fleetwire.vehicle.state.changed'] }, 400, 'invalid_webhook_url'],
      [{ url: 'http://127.0.0.1:9/', types: [] }, 400, 'validation_failed'],
      [{ url: 'http://127.0.0.1:9/', types: ['fleetwire.vehicle.state.changed'], description: 'x'.repeat(501) }, 400, 'validation_failed'],
      [{ url: 'http://127.0.0.1:9/', types: ['fleetwire.vehicle.state.changed'], secret: 'mine' }, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await core.http.admin('POST', path(fleet), body);
      expect([answer.status, answer.body.code], JSON.stringify(body)).toEqual([status, code]);
    }
    const created = await subscribe(fleet, 'http://127.0.0.1:9/');
    const patched = await core.http.admin('PATCH', path(fleet, `/${created.id}`), { types: ['nope'] });
    expect([patched.status, patched.body.code]).toEqual([400, 'unknown_event_type']);
  });
});

describe('deliveries', () => {
  // A test's subscriptions whose receivers are gone would keep the shared core retrying them for the rest of the
  // file; on the in-process database every retry queues behind the next test's statements.
  afterEach(async () => {
    await core.db.query("UPDATE webhook_subscriptions SET status = 'paused', status_reason = 'test over', updated_at = clock_timestamp() WHERE status = 'active'");
  });
  it('delivers signed CloudEvents in order per vehicle, verified by the standardwebhooks library', async () => {
    const receiver = await startReceiver();
    try {
      const fleet = await createFleet(core.db, core.secretKey, { vehicles: 3 });
      const { secret } = await subscribe(fleet, `${receiver.url}/fleet`);
      const start = core.clock.now() - 10 * 60_000;
      // Vehicles side by side, each vehicle's readings one after the other (so none of them is late).
      await Promise.all(
        fleet.vehicles.map(async (_, v) => {
          for (const u of socs(fleet, v, [50, 51, 52, 53], start)) await ingestBatch(core.db, [u], { now: core.clock.now() });
        }),
      );
      await until(() => receiver.received.length, (n) => n >= 12);

      const verifier = new Webhook(secret);
      const events = receiver.received.map((r) => {
        expect(r.path).toBe('/fleet');
        expect(r.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
        expect(r.headers['webhook-id']).toMatch(/^[0-9a-f-]{36}$/);
        return verifier.verify(r.body, r.headers as Record<string, string>) as { id: string; subject: string; sequence: string; data: { signals: { soc_pct: { value: number } } } };
      });
      expect(events.every((e, i) => e.id === receiver.received[i]!.headers['webhook-id'])).toBe(true);
      for (const vehicle of fleet.vehicles) {
        const own = events.filter((e) => e.subject === `vehicles/${vehicle.id}`);
        expect(own.map((e) => Number(e.sequence))).toEqual(own.map((_, i) => i + 1));
      }
      // A tampered body fails verification: the signature covers it.
      const tampered = receiver.received[0]!.body.replace('"soc_pct"', '"soc_pcx"');
      expect(() => verifier.verify(tampered, receiver.received[0]!.headers as Record<string, string>)).toThrow();

      const sub = (await core.http.admin('GET', path(fleet))).body.items[0];
      await until(async () => (await core.http.admin('GET', path(fleet, `/${sub.id}`))).body.health, (h) => h.backlog === 0 && h.lastSuccessAt !== null && h.latencyMs !== null);
      const deliveries = await core.http.admin('GET', path(fleet, `/${sub.id}/deliveries?limit=100`));
      expect(deliveries.body.items).toHaveLength(12);
      expect(deliveries.body.items.every((d: { outcome: string; statusCode: number }) => d.outcome === 'delivered' && d.statusCode === 200)).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('holds the line while the receiver fails, retrying with growing delays, then delivers everything in order', async () => {
    const receiver = await startReceiver((_r, n) => (n <= 4 ? { status: 503 } : { status: 204 }));
    try {
      const fleet = await createFleet(core.db, core.secretKey);
      const { id } = await subscribe(fleet, receiver.url);
      for (const u of socs(fleet, 0, [60, 61, 62], core.clock.now() - 60_000)) await ingestBatch(core.db, [u], { now: core.clock.now() });
      await until(() => receiver.received.length, (n) => n >= 7);
      const ids = receiver.received.map((r) => r.headers['webhook-id']);
      // The first event was tried five times (four refusals), and only then did the second go.
      expect(ids.slice(0, 5).every((x) => x === ids[0])).toBe(true);
      expect(new Set(ids.slice(4)).size).toBe(3);
      const deliveries = (await core.http.admin('GET', path(fleet, `/${id}/deliveries`))).body.items.reverse();
      expect(deliveries.slice(0, 4).map((d: { outcome: string; error: string }) => [d.outcome, d.error])).toEqual(Array(4).fill(['failed', 'HTTP 503']));
      expect(deliveries.slice(0, 5).map((d: { attempt: number }) => d.attempt)).toEqual([1, 2, 3, 4, 5]);
      const gaps = deliveries.slice(0, 5).map((d: { attemptedAt: string }) => Date.parse(d.attemptedAt)).map((t: number, i: number, all: number[]) => (i === 0 ? 0 : t - all[i - 1]!));
      expect(gaps[4]).toBeGreaterThan(gaps[1]! * 1.2);
      const health = (await core.http.admin('GET', path(fleet, `/${id}`))).body.health;
      expect(health).toMatchObject({ failingSince: null, lastError: { message: 'HTTP 503' } });
    } finally {
      await receiver.close();
    }
  });

  it('ends on 410, never follows a redirect, times a silent receiver out, and pauses one failing too long', async () => {
    const gone = await startReceiver(() => ({ status: 410 }));
    const target = await startReceiver();
    const redirecting = await startReceiver(() => ({ status: 307, headers: { location: `${target.url}/elsewhere` } }));
    const silent = await startReceiver(() => ({ status: 200, delayMs: 5000 }));
    const failing = await startReceiver(() => ({ status: 500 }));
    const quick = await startTestCore({ webhooks: { timeoutMs: 300, giveUpAfterMs: 1500, backoffBaseMs: 100, backoffCapMs: 300 } });
    try {
      const fleet = await createFleet(quick.db, quick.secretKey);
      const make = async (url: string) => (await quick.http.admin('POST', path(fleet), { url, types: ['fleetwire.vehicle.state.changed'] })).body.id as string;
      const [goneId, redirectId, silentId, failingId] = [await make(gone.url), await make(redirecting.url), await make(silent.url), await make(failing.url)];
      await ingestBatch(quick.db, [update(fleet, [{ signal: 'soc_pct', value: 70, observedAt: quick.clock.now() - 1000 }])], { now: quick.clock.now() });
      const get = async (id: string) => (await quick.http.admin('GET', path(fleet, `/${id}`))).body;

      await until(() => get(goneId), (w) => w.status === 'ended');
      expect((await get(goneId)).statusReason).toMatch(/410 Gone/);
      const resume = await quick.http.admin('PATCH', path(fleet, `/${goneId}`), { status: 'active' });
      expect([resume.status, resume.body.code]).toEqual([409, 'webhook_ended']);

      await until(() => get(redirectId), (w) => w.health.lastError !== null);
      expect((await get(redirectId)).health.lastError.message).toMatch(/^HTTP 307: redirects are not followed/);
      expect(target.received).toHaveLength(0);

      await until(() => get(silentId), (w) => w.health.lastError !== null);
      expect((await get(silentId)).health.lastError.message).toBe('no answer within 300 ms');

      const paused = await until(() => get(failingId), (w) => w.status === 'paused');
      expect(paused.statusReason).toMatch(/^failing for/);
      expect(paused.health.backlog).toBe(1);
    } finally {
      await quick.close();
      for (const r of [gone, target, redirecting, silent, failing]) await r.close();
    }
  });

  it('lets no silent, trickling, slow, redirecting or failing receiver hold up another subscription on the same host', async () => {
    const timeoutMs = 4000;
    const host = await startReceiver((r) => {
      if (r.path.startsWith('/silent')) return { status: 200, delayMs: Infinity };
      if (r.path === '/trickling') return { status: 200, trickle: true };
      if (r.path === '/slow') return { status: 200, delayMs: 300 };
      if (r.path === '/redirecting') return { status: 302, headers: { location: '/healthy' } };
      if (r.path === '/failing') return { status: 502 };
      return { status: 200 };
    });
    // One delivery at a time per subscription: the five silent ones alone keep five open to the host, more than a cap
    // of four times the concurrency on one host's connections would allow. Slower retries keep the in-process
    // database from crowding the event loop on a busy machine.
    const quick = await startTestCore({ webhooks: { timeoutMs, concurrency: 1, backoffBaseMs: 500, backoffCapMs: 2000 } });
    try {
      const fleet = await createFleet(quick.db, quick.secretKey);
      const make = async (suffix: string) =>
        (await quick.http.admin('POST', path(fleet), { url: `${host.url}${suffix}`, types: ['fleetwire.vehicle.state.changed'] })).body.id as string;
      const silentIds = [];
      for (let i = 1; i <= 5; i += 1) silentIds.push(await make(`/silent/${i}`));
      const ids = { trickling: await make('/trickling'), slow: await make('/slow'), redirecting: await make('/redirecting'), failing: await make('/failing'), healthy: await make('/healthy') };
      for (const u of socs(fleet, 0, [40, 41], quick.clock.now() - 60_000)) await ingestBatch(quick.db, [u], { now: quick.clock.now() });
      const at = (suffix: string) => host.received.filter((r) => r.path === suffix).map((r) => Number((JSON.parse(r.body) as { sequence: string }).sequence));
      const get = async (id: string) => (await quick.http.admin('GET', path(fleet, `/${id}`))).body;
      const deliveries = async (id: string) =>
        ((await quick.http.admin('GET', path(fleet, `/${id}/deliveries`))).body.items as { outcome: string; statusCode: number | null; error: string | null; durationMs: number; latencyMs: number | null }[]).reverse();
      const poll = <T>(what: () => Promise<T>, ok: (value: T) => boolean) => until(what, ok, 30_000, 500);

      // The healthy one gets both events, in order, with no failed attempt and none waiting out another's timeout.
      await until(() => at('/healthy'), (got) => got.length >= 2);
      expect(at('/healthy')).toEqual([1, 2]);
      const healthy = await poll(() => deliveries(ids.healthy), (d) => d.length >= 2);
      expect(healthy.map((d) => [d.outcome, d.statusCode])).toEqual([['delivered', 200], ['delivered', 200]]);
      expect(Math.max(...healthy.map((d) => d.latencyMs!))).toBeLessThan(timeoutMs);
      expect((await get(ids.healthy)).health).toMatchObject({ backlog: 0, failingSince: null, lastError: null });

      // Slow within the timeout is a success, not a failure.
      expect((await poll(() => deliveries(ids.slow), (d) => d.length >= 2)).map((d) => d.outcome)).toEqual(['delivered', 'delivered']);
      // A body that never ends is cut off at the timeout, and the 200 before it counts: the next event follows.
      await until(() => at('/trickling'), (got) => got.length >= 2, 30_000, 250);
      expect(at('/trickling')).toEqual([1, 2]);
      const trickled = await poll(() => deliveries(ids.trickling), (d) => d.length >= 2);
      expect(trickled.map((d) => [d.outcome, d.statusCode])).toEqual([['delivered', 200], ['delivered', 200]]);
      expect(Math.max(...trickled.map((d) => d.durationMs))).toBeLessThan(timeoutMs * 2);

      // The silent ones time out and hold the line: only the first event was tried.
      for (const id of silentIds) {
        expect((await poll(() => get(id), (w) => w.health.lastError !== null)).health).toMatchObject({ backlog: 2, lastError: { message: `no answer within ${timeoutMs} ms` } });
      }
      expect(new Set(host.received.filter((r) => r.path.startsWith('/silent')).map((r) => r.path)).size).toBe(5);
      expect(new Set(host.received.filter((r) => r.path.startsWith('/silent')).map((r) => Number(JSON.parse(r.body).sequence)))).toEqual(new Set([1]));
      // A redirect is a failure, not followed (the healthy path got only its own two); a 5xx is a failure.
      const redirected = (await poll(() => deliveries(ids.redirecting), (d) => d.length >= 1))[0]!;
      expect([redirected.outcome, redirected.statusCode, redirected.error]).toEqual(['failed', 302, expect.stringMatching(/^HTTP 302: redirects are not followed/)]);
      const failed = (await poll(() => deliveries(ids.failing), (d) => d.length >= 1))[0]!;
      expect([failed.outcome, failed.statusCode, failed.error]).toEqual(['failed', 502, 'HTTP 502']);
      expect([(await get(ids.redirecting)).health.backlog, (await get(ids.failing)).health.backlog]).toEqual([2, 2]);
      expect(at('/healthy')).toEqual([1, 2]);
    } finally {
      await quick.close();
      await host.close();
    }
  }, 120_000);

  it('delivers nothing while paused, the backlog on resume, and again what a replay asks for, with the same ids', async () => {
    const receiver = await startReceiver();
    try {
      const fleet = await createFleet(core.db, core.secretKey);
      const { id } = await subscribe(fleet, receiver.url);
      expect((await core.http.admin('PATCH', path(fleet, `/${id}`), { status: 'paused' })).body).toMatchObject({ status: 'paused', statusReason: 'paused by an operator' });
      const before = new Date(Date.now() - 1000).toISOString();
      for (const u of socs(fleet, 0, [30, 31], core.clock.now() - 60_000)) await ingestBatch(core.db, [u], { now: core.clock.now() });
      await core.events.flush();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.received).toHaveLength(0);
      expect((await core.http.admin('GET', path(fleet, `/${id}`))).body.health.backlog).toBe(2);

      await core.http.admin('PATCH', path(fleet, `/${id}`), { status: 'active' });
      await until(() => receiver.received.length, (n) => n >= 2);
      const replay = await core.http.admin('POST', path(fleet, `/${id}/replay`), { from: before });
      expect(replay.status).toBe(202);
      await until(() => receiver.received.length, (n) => n >= 4);
      const ids = receiver.received.map((r) => r.headers['webhook-id']);
      expect(ids.slice(2)).toEqual(ids.slice(0, 2));
      expect((await core.http.admin('POST', path(fleet, `/${id}/replay`), { from: 'last week' })).status).toBe(400);
    } finally {
      await receiver.close();
    }
  });
});

describe('a dispatcher with nothing to deliver', () => {
  it('stays idle once its subscription has caught up: a scan a tick, not a loop of claims', async () => {
    const receiver = await startReceiver();
    const holder = `idle-test-${randomBytes(4).toString('hex')}`;
    let statements = 0;
    const counted = new Proxy(core.db, {
      get(target, name, receiverObject) {
        if (name === 'query') return (...args: Parameters<typeof target.query>) => ((statements += 1), target.query(...args));
        const value: unknown = Reflect.get(target, name, receiverObject);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const hub = createEventHub(core.db, { intervalMs: 100 });
    await hub.start();
    const dispatcher = createWebhookDispatcher({ db: counted, secretKey: core.secretKey, hub, logger: createLogger({ level: 'silent', name: 'idle-test' }), holder, allowPrivate: true, scanMs: 500 });
    try {
      const fleet = await createFleet(core.db, core.secretKey);
      // Made and claimed for this dispatcher in one transaction, so the test core's own dispatcher never takes it.
      await core.db.transaction(async (tx) => {
        const made = await createWebhook(tx, core.secretKey, fleet.workspaceId, { url: receiver.url, types: ['fleetwire.vehicle.state.changed'] }, { allowPrivate: true });
        await tx.query("UPDATE webhook_subscriptions SET claimed_by = $3, claimed_until = now() + interval '1 hour' WHERE workspace_id = $1 AND id = $2", [fleet.workspaceId, made.id, holder]);
      });
      dispatcher.start();
      for (const u of socs(fleet, 0, [40, 41, 42], core.clock.now() - 60_000)) await ingestBatch(core.db, [u], { now: core.clock.now() });
      await until(() => receiver.received.length, (n) => n >= 3);
      await new Promise((resolve) => setTimeout(resolve, 300));
      statements = 0;
      await new Promise((resolve) => setTimeout(resolve, 2000));
      // Four ticks of the scan in 2 s, each renewing its claim and claiming (two statements); a line that looked
      // again each time it caught up would make hundreds.
      expect(statements).toBeLessThanOrEqual(12);
      expect(receiver.received).toHaveLength(3);
    } finally {
      await dispatcher.stop();
      await hub.stop();
      await receiver.close();
    }
  });
});

describe('targets', () => {
  it('knows the special addresses, IPv4 inside IPv6 included', () => {
    const special = ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', 'not-an-ip'];
    const public_ = ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '172.32.0.1', '192.169.0.1'];
    expect(special.filter((a) => !isSpecialAddress(a))).toEqual([]);
    expect(public_.filter(isSpecialAddress)).toEqual([]);
  });

  it('refuses a private target when subscribing, and one whose name resolves to a private address when connecting', async () => {
    const receiver = await startReceiver();
    const strict = await startTestCore({ webhooks: { allowPrivate: false } });
    try {
      const fleet = await createFleet(strict.db, strict.secretKey);
      for (const url of ['http://127.0.0.1:9/', 'http://10.0.0.7/hook', 'http://[::1]:9/', 'http://169.254.169.254/latest', 'http://localhost:9/']) {
        const answer = await strict.http.admin('POST', path(fleet), { url, types: ['fleetwire.vehicle.state.changed'] });
        expect([answer.status, answer.body.code], url).toEqual([400, 'webhook_target_refused']);
      }
      // A subscription made while its name resolved to a public address, whose name now resolves to loopback (made
      // here through the registry as a deployment that allowed it would have): refused when connecting.
      await createWebhook(strict.db, strict.secretKey, fleet.workspaceId, { url: receiver.url.replace('127.0.0.1', 'localhost'), types: ['fleetwire.vehicle.state.changed'] }, { allowPrivate: true });
      await ingestBatch(strict.db, [update(fleet, [{ signal: 'soc_pct', value: 44, observedAt: strict.clock.now() - 1000 }])], { now: strict.clock.now() });
      const health = await until(async () => (await strict.http.admin('GET', path(fleet))).body.items[0].health, (h) => h.lastError !== null);
      expect(health.lastError.message).toMatch(/resolves to (127\.0\.0\.1|::1), a private, loopback or link-local address/);
      expect(receiver.received).toHaveLength(0);
    } finally {
      await strict.close();
      await receiver.close();
    }
  });
});

describe('the signing secret at rest', () => {
  it('moves to a new deployment key with the credentials, and is the same secret after', async () => {
    const keyed = await startTestCore();
    try {
      const fleet = await createFleet(keyed.db, keyed.secretKey);
      const made = (await keyed.http.admin('POST', path(fleet), { url: 'http://127.0.0.1:9/', types: ['fleetwire.vehicle.state.changed'] })).body as { id: string; secret: string };
      const newKey = randomBytes(32);
      const report = await rotateCredentialKey(keyed.db, keyed.secretKey, newKey);
      expect(report.webhookSecrets).toEqual({ reencrypted: 1, unreadable: [] });
      const { rows } = await keyed.db.query<{ secret_ciphertext: string }>('SELECT secret_ciphertext FROM webhook_subscriptions WHERE id = $1', [made.id]);
      expect(openSigningSecret(newKey, fleet.workspaceId, made.id, rows[0]!.secret_ciphertext)).toBe(made.secret);
      expect(() => openSigningSecret(keyed.secretKey, fleet.workspaceId, made.id, rows[0]!.secret_ciphertext)).toThrow();
      // Bound to its subscription: the same ciphertext does not open as another's.
      expect(() => openSigningSecret(newKey, fleet.workspaceId, fleet.connectionId, rows[0]!.secret_ciphertext)).toThrow();
    } finally {
      await keyed.close();
    }
  });
});
