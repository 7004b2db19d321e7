/**
 * The Geotab JSON-RPC client: session caching in the PollContext Map, the `path` redirect, the single
 * re-authentication, the error classes whatever the HTTP status, timeouts and cancellation, and that no message
 * or dump carries the password or the session id. Against the simulator, and against a stub server for answers
 * the simulator never gives.
 */
import type { ServerResponse } from 'node:http';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createGeotabClient } from '../../../src/providers/geotab/client.ts';
import { feedResultSchema } from '../../../src/providers/geotab/wire.ts';
import type { ProviderError } from '../../../src/providers/provider-error.ts';
import { expectProviderError, login, rawRpc, rpcErrorBody, sendJson, simulatedSleep, startHarness, startStub, stopAll } from './harness.ts';

afterEach(stopAll);

const feed = { fromDate: '2000-01-01T00:00:00.000Z', resultsLimit: 10 };
const sessionIdOf = (session: Map<string, unknown>) =>
  (session.get('geotab.session') as { credentials: { sessionId: string } } | undefined)?.credentials.sessionId;

/** A stub that authenticates anyone and answers every other call with `answer`. */
async function stubAnswering(answer: (response: ServerResponse) => void) {
  return startStub((body, response) => {
    if (body.method === 'Authenticate') {
      sendJson(response, 200, { result: { credentials: { database: login.database, sessionId: '777000111', userName: login.userName }, path: 'ThisServer' }, jsonrpc: '2.0' });
    } else answer(response);
  });
}

describe('Geotab client: sessions', () => {
  it('authenticates once and reuses the session kept in the session Map, across clients', async () => {
    const h = await startHarness();
    const session = new Map<string, unknown>();
    const first = createGeotabClient({ baseUrl: h.sim.url, login, session });
    await first.getFeed('StatusData', feed);
    await first.getFeed('LogRecord', feed);
    expect(first.requests).toBe(3);
    const second = createGeotabClient({ baseUrl: h.sim.url, login, session });
    const statuses = await second.get('DeviceStatusInfo');
    expect(statuses.length).toBeGreaterThan(0);
    expect(second.requests).toBe(1);
    expect(h.sim.served.requests).toBe(4);

    // Another login (or another base URL) never borrows the session.
    const other = createGeotabClient({ baseUrl: `${h.sim.url}/`, login, session });
    await other.get('Device');
    expect(other.requests).toBe(2);
  });

  it('never shows the session id when the session Map is logged or serialized', async () => {
    const h = await startHarness();
    const session = new Map<string, unknown>();
    await createGeotabClient({ baseUrl: h.sim.url, login, session }).get('Device');
    const sessionId = sessionIdOf(session);
    expect(sessionId).toMatch(/^\d+$/);
    const dumps = [JSON.stringify([...session]), JSON.stringify(Object.fromEntries(session)), inspect(session, { depth: 10, showHidden: true })];
    for (const dump of dumps) {
      expect(dump).not.toContain(sessionId);
      expect(dump).not.toContain(login.password);
      expect(dump).toContain('[redacted]');
    }
  });

  it('re-authenticates once and repeats the call when the session has expired', async () => {
    const h = await startHarness();
    const session = new Map<string, unknown>();
    // Paced on the simulator's clock, which allows one StatusData GetFeed per second.
    const client = createGeotabClient({ baseUrl: h.sim.url, login, session, clock: { now: h.now, sleep: simulatedSleep(h) } });
    await client.getFeed('StatusData', feed);
    const before = sessionIdOf(session);
    h.sim.expireSessions();
    const answer = await client.getFeed('StatusData', feed);
    expect(feedResultSchema.parse(answer).toVersion).toMatch(/^[0-9a-f]{16}$/);
    // Authenticate, call, refused call, Authenticate, repeated call.
    expect(client.requests).toBe(5);
    expect(sessionIdOf(session)).not.toBe(before);
  });

  it('ends as auth when the fresh session is refused too, and drops it', async () => {
    const stub = await stubAnswering((response) => sendJson(response, 200, rpcErrorBody('InvalidUserException', 'Incorrect login credentials')));
    const session = new Map<string, unknown>();
    const client = createGeotabClient({ baseUrl: stub.url, login, session });
    const error = await expectProviderError(client.getFeed('StatusData', feed), 'auth');
    expect(stub.requests.map((r) => r.method)).toEqual(['Authenticate', 'GetFeed', 'Authenticate', 'GetFeed']);
    expect(stub.requests[3].params.credentials).toEqual({ database: login.database, sessionId: '777000111', userName: login.userName });
    expect(session.has('geotab.session')).toBe(false);
    expect(error.message).not.toContain('777000111');
  });

  it('refuses wrong credentials as auth, without retrying Authenticate and without the password in the message', async () => {
    const h = await startHarness();
    const client = createGeotabClient({ baseUrl: h.sim.url, login: { ...login, password: 'wrong-secret-123' }, session: new Map() });
    const error = await expectProviderError(client.getFeed('StatusData', feed), 'auth');
    expect(error.message).not.toContain('wrong-secret-123');
    expect(client.requests).toBe(1);
  });

  it('reports Authenticate over its per-minute limit as rate_limited with the Retry-After wait', async () => {
    const h = await startHarness({ authenticatePerMinute: 1 });
    await createGeotabClient({ baseUrl: h.sim.url, login, session: new Map() }).get('Device');
    const error = await expectProviderError(createGeotabClient({ baseUrl: h.sim.url, login, session: new Map() }).get('Device'), 'rate_limited');
    expect(error.retryAfterMs).toBe(60_000);
    expect(error.message).toContain('OverLimitException');
  });

  it('follows an Authenticate path that names another server for every later call', async () => {
    const h = await startHarness();
    const simHost = h.sim.url.replace(/^http:\/\//, '');
    // The first server only authenticates (through the simulator) and points at the simulator's host.
    const front = await startStub(async (body, response) => {
      if (body.method !== 'Authenticate') return sendJson(response, 200, rpcErrorBody('MissingMethodException', 'not here', -32601));
      const auth = await rawRpc(h.sim.url, 'Authenticate', body.params);
      sendJson(response, 200, { result: { ...auth.json.result, path: simHost }, jsonrpc: '2.0' });
    });
    const session = new Map<string, unknown>();
    const client = createGeotabClient({ baseUrl: front.url, login, session });
    await client.getFeed('LogRecord', feed);
    await client.get('DeviceStatusInfo');
    expect(front.requests.map((r) => r.method)).toEqual(['Authenticate']);
    expect(h.sim.served.requests).toBe(3);
    expect((session.get('geotab.session') as { server: string }).server).toBe(h.sim.url);

    // Re-authentication goes back to the configured server, which redirects again.
    h.sim.expireSessions();
    await client.get('Device');
    expect(front.requests.map((r) => r.method)).toEqual(['Authenticate', 'Authenticate']);
  });

  it('sends credentials with every call and the JSON-RPC request shape', async () => {
    const stub = await stubAnswering((response) => sendJson(response, 200, { result: { data: [], toVersion: '0000000000000001' }, jsonrpc: '2.0' }));
    const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map() });
    await client.getFeed('StatusData', { fromVersion: '0000000000000000', fromDate: 'ignored', resultsLimit: 5000 });
    await client.getFeed('LogRecord', { fromDate: '2026-01-01T00:00:00.000Z', resultsLimit: 10 });
    expect(stub.requests[0]).toEqual({ method: 'Authenticate', params: { ...login }, id: 1 });
    const credentials = { database: login.database, sessionId: '777000111', userName: login.userName };
    expect(stub.requests[1]).toEqual({
      method: 'GetFeed',
      params: { typeName: 'StatusData', fromVersion: '0000000000000000', resultsLimit: 5000, credentials },
      id: 1,
    });
    expect(stub.requests[2].params).toEqual({ typeName: 'LogRecord', search: { fromDate: '2026-01-01T00:00:00.000Z' }, resultsLimit: 10, credentials });
  });
});

describe('Geotab client: error classes', () => {
  const cases: { name: string; status: number; body: unknown; headers?: Record<string, string>; errorClass: ProviderError['errorClass']; retryAfterMs?: number }[] = [
    { name: 'OverLimitException, HTTP 200', status: 200, body: rpcErrorBody('OverLimitException'), headers: { 'retry-after': '58' }, errorClass: 'rate_limited', retryAfterMs: 58_000 },
    { name: 'OverLimitException, HTTP 429', status: 429, body: rpcErrorBody('OverLimitException'), headers: { 'retry-after': '7' }, errorClass: 'rate_limited', retryAfterMs: 7000 },
    { name: '429 without an envelope', status: 429, body: 'slow down', headers: { 'retry-after': '2' }, errorClass: 'rate_limited', retryAfterMs: 2000 },
    { name: 'DbUnavailableException, HTTP 200', status: 200, body: rpcErrorBody('DbUnavailableException'), errorClass: 'transient' },
    { name: 'DbUnavailableException, HTTP 503', status: 503, body: rpcErrorBody('DbUnavailableException'), errorClass: 'transient' },
    { name: 'MissingMethodException, HTTP 200', status: 200, body: rpcErrorBody('MissingMethodException', 'no', -32601), errorClass: 'permanent' },
    { name: 'an unknown type behind HTTP 500', status: 500, body: rpcErrorBody('SqlException'), errorClass: 'transient' },
    { name: 'an unknown type behind HTTP 400', status: 400, body: rpcErrorBody('ArgumentException'), errorClass: 'permanent' },
    { name: 'a 502 HTML page', status: 502, body: '<html>bad gateway</html>', errorClass: 'transient' },
    { name: 'a 404 HTML page', status: 404, body: '<html>not found</html>', errorClass: 'permanent' },
    { name: 'a 200 body that is not JSON', status: 200, body: '<html>maintenance</html>', errorClass: 'malformed_response' },
    { name: 'a 200 JSON body cut off', status: 200, body: '{"result":{"data":[{"id":"a1"', errorClass: 'malformed_response' },
    { name: 'neither result nor error', status: 200, body: { jsonrpc: '2.0' }, errorClass: 'malformed_response' },
    { name: 'a result of the wrong shape', status: 200, body: { result: { data: 'none' }, jsonrpc: '2.0' }, errorClass: 'malformed_response' },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.errorClass}`, async () => {
      const stub = await stubAnswering((response) => sendJson(response, c.status, c.body, c.headers));
      const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map() });
      const error = await expectProviderError(client.getFeed('StatusData', feed), c.errorClass);
      expect(error.retryAfterMs).toBe(c.retryAfterMs);
      // No retries: Authenticate and the one call.
      expect(stub.requests).toHaveLength(2);
    });
  }

  it('rejects a malformed Authenticate result as malformed_response', async () => {
    const stub = await startStub((_body, response) => sendJson(response, 200, { result: { credentials: { database: 'x' } }, jsonrpc: '2.0' }));
    await expectProviderError(createGeotabClient({ baseUrl: stub.url, login, session: new Map() }).get('Device'), 'malformed_response');
  });

  it('keeps the password and the session id out of messages even when the server echoes them', async () => {
    const stub = await stubAnswering((response) =>
      sendJson(response, 200, rpcErrorBody('ArgumentException', `bad call for ${login.password} with session 777000111`)),
    );
    const error = await expectProviderError(createGeotabClient({ baseUrl: stub.url, login, session: new Map() }).get('Device'), 'permanent');
    expect(error.message).toContain('ArgumentException');
    expect(error.message).not.toContain(login.password);
    expect(error.message).not.toContain('777000111');
  });
});

describe('Geotab client: timeouts, cancellation, network', () => {
  it('times out a server that never answers as transient', async () => {
    const stub = await startStub(() => undefined);
    const started = Date.now();
    const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map(), timeoutMs: 150 });
    const error = await expectProviderError(client.get('Device'), 'transient');
    expect(error.message).toMatch(/no answer within 150 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('stops at once when the caller aborts', async () => {
    const stub = await startStub(() => undefined);
    const controller = new AbortController();
    const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map(), signal: controller.signal, timeoutMs: 60_000 });
    const pending = expectProviderError(client.get('Device'), 'transient');
    setTimeout(() => controller.abort(), 50);
    expect((await pending).message).toMatch(/cancelled/);
  });

  it('reports a refused connection as transient', async () => {
    const h = await startHarness();
    const url = h.sim.url;
    await h.sim.stop();
    await expectProviderError(createGeotabClient({ baseUrl: url, login, session: new Map() }).get('Device'), 'transient');
  });

  it('reports a socket the server destroys (simulator timeout fault) as transient', async () => {
    const h = await startHarness({ timeoutMs: 100 });
    const session = new Map<string, unknown>();
    const client = createGeotabClient({ baseUrl: h.sim.url, login, session });
    await client.get('Device');
    h.sim.faults.queue('timeout');
    await expectProviderError(client.get('Device'), 'transient');
  });
});

/**
 * MyGeotab's limits kept by the client itself: "Rate limits of 1 RPS ... added to all GetFeed APIs" per entity
 * type (SDK new.md 5.7.1902; guide "Rate limits": per method, entity, user and database), and at most 10
 * Authenticate calls per user per minute (blog "api-call-limits"). On an injected clock, so nothing sleeps.
 */
describe('Geotab client: rate limits kept on the client side', () => {
  function virtualClock(startMs = 1_700_000_000_000) {
    let at = startMs;
    const slept: number[] = [];
    return {
      slept,
      clock: {
        now: () => at,
        sleep: (ms: number) => {
          slept.push(ms);
          at += ms;
          return Promise.resolve();
        },
      },
      advance: (ms: number) => {
        at += ms;
      },
    };
  }

  /** A stub that authenticates anyone and answers GetFeed with `answer(typeName)` (status, body, headers). */
  async function feedStub(time: ReturnType<typeof virtualClock>, answer: (typeName: string) => { body: unknown; headers?: Record<string, string> }) {
    const calledAt: number[] = [];
    const stub = await startStub((body, response) => {
      calledAt.push(time.clock.now());
      if (body.method === 'Authenticate') {
        sendJson(response, 200, { result: { credentials: { database: login.database, sessionId: '5', userName: login.userName }, path: 'ThisServer' } });
      } else {
        const reply = answer(body.params.typeName);
        sendJson(response, 200, reply.body, reply.headers);
      }
    });
    return { stub, calledAt };
  }
  const emptyPage = { result: { data: [], toVersion: '0000000000000001' } };
  // What MyGeotab sends with a successful answer of a rate-limited method (SDK "Concepts", headers example).
  const oneASecond = { 'x-rate-limit-limit': '1s', 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': '2019-04-26T16:13:11.9440478Z' };

  it('paces GetFeed to one call per second per entity type when the server declares the limit, and not across types', async () => {
    const time = virtualClock();
    const { stub, calledAt } = await feedStub(time, () => ({ body: emptyPage, headers: oneASecond }));
    const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map(), clock: time.clock });
    await client.getFeed('StatusData', feed);
    await client.getFeed('LogRecord', feed);
    await client.getFeed('StatusData', feed);
    time.advance(400);
    await client.getFeed('StatusData', feed);
    time.advance(5000);
    await client.getFeed('StatusData', feed);
    // The second StatusData waited out its second; LogRecord did not wait for StatusData; after 400 ms the next
    // waited 600 ms more; after 5 s nothing was waited.
    expect(time.slept).toEqual([1000, 600]);
    const statusCalls = stub.requests.map((r, i) => ({ r, at: calledAt[i]! })).filter(({ r }) => r.params.typeName === 'StatusData').map(({ at }) => at);
    for (let i = 1; i < statusCalls.length; i += 1) expect(statusCalls[i]! - statusCalls[i - 1]!).toBeGreaterThanOrEqual(1000);
  });

  it('does not wait while calls remain in the period, nor for a server that declares no limit', async () => {
    const time = virtualClock();
    let remaining = 2;
    const { stub } = await feedStub(time, (typeName) =>
      typeName === 'StatusData' ? { body: emptyPage, headers: { 'x-rate-limit-limit': '1m', 'x-rate-limit-remaining': String(remaining--) } } : { body: emptyPage },
    );
    const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map(), clock: time.clock });
    for (let i = 0; i < 3; i += 1) await client.getFeed('LogRecord', feed);
    // Remaining 2, 1, then 0: only the call after the last one left must wait, for the period declared; a wait that
    // long is the scheduler's, so the call is refused as rate_limited, unsent.
    for (let i = 0; i < 3; i += 1) await client.getFeed('StatusData', feed);
    time.advance(10_000);
    const refused = await expectProviderError(client.getFeed('StatusData', feed), 'rate_limited');
    expect(refused.retryAfterMs).toBe(50_000);
    expect(time.slept).toEqual([]);
    expect(stub.requests.filter((r) => r.method === 'GetFeed')).toHaveLength(6);
    time.advance(50_000);
    await client.getFeed('StatusData', feed);
    expect(stub.requests.filter((r) => r.method === 'GetFeed')).toHaveLength(7);
  });

  it('leaves an OverLimitException to the poll runner: rate_limited with Retry-After, no wait of its own', async () => {
    const time = virtualClock();
    let refuse = true;
    const { stub } = await feedStub(time, () => {
      if (!refuse) return { body: emptyPage };
      refuse = false;
      return { body: { error: { message: 'API calls quota exceeded. Maximum admitted 1 per 1s.', code: -32000, data: { id: 'x', type: 'OverLimitException' } } }, headers: { 'retry-after': '3' } };
    });
    const client = createGeotabClient({ baseUrl: stub.url, login, session: new Map(), clock: time.clock });
    const refused = await expectProviderError(client.getFeed('StatusData', feed), 'rate_limited');
    expect(refused.retryAfterMs).toBe(3000);
    await client.getFeed('StatusData', feed);
    expect(time.slept).toEqual([]);
    expect(stub.requests.filter((r) => r.method === 'GetFeed')).toHaveLength(2);
  });

  it('keeps Authenticate to 10 a minute: the 11th is refused here as rate_limited, never sent', async () => {
    const time = virtualClock();
    const stub = await stubAnswering((response) => sendJson(response, 200, rpcErrorBody('InvalidUserException', 'Incorrect login credentials')));
    // Get (not GetFeed): no pacing in the way.
    const session = new Map<string, unknown>();
    const client = createGeotabClient({ baseUrl: stub.url, login, session, clock: time.clock });
    // Each call authenticates, is refused, authenticates again and is refused again: two Authenticates per call.
    for (let i = 0; i < 5; i += 1) {
      await expectProviderError(client.get('Device'), 'auth');
      time.advance(1000);
    }
    expect(stub.requests.filter((r) => r.method === 'Authenticate')).toHaveLength(10);
    const refused = await expectProviderError(client.get('Device'), 'rate_limited');
    // The first Authenticate was 5 s ago: the window has room again in 55 s.
    expect(refused.retryAfterMs).toBe(55_000);
    expect(stub.requests.filter((r) => r.method === 'Authenticate')).toHaveLength(10);
    time.advance(55_000);
    await expectProviderError(client.get('Device'), 'auth');
    expect(stub.requests.filter((r) => r.method === 'Authenticate')).toHaveLength(12);
  });
});
