/**
 * The shared provider fetch, on its own and through each real client, against real HTTP servers on loopback:
 * redirects are never followed (the second server never hears of the request), bodies stop at the size cap
 * (the server sees its socket close long before it has written everything), the timeout covers the body, a
 * caller abort is told from a timeout, and no message, dump or log line carries a secret.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { format, inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createGeotabClient } from '../../src/providers/geotab/client.ts';
import { ProviderError, type ProviderErrorClass } from '../../src/providers/provider-error.ts';
import { defaultMaxBodyBytes, providerFetch, redact, statusError, type ProviderRequest } from '../../src/providers/provider-http.ts';
import { createSamsaraClient } from '../../src/providers/samsara/client.ts';
import { fetchTraccarDevices } from '../../src/providers/traccar/client.ts';

const mib = 1024 * 1024;
/** What an endless body writes at most, so a broken client ends the test instead of filling the disk or memory. */
const streamLimit = 64 * mib;

interface Served {
  url: string;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
}

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<Served> {
  const requests: Served['requests'] = [];
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    // Drain the request body (Geotab's password rides in it) before answering.
    request.resume();
    request.on('end', () => handler(request, response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** What an endless body's server saw: how much it wrote, and whether the client hung up before the end. */
interface Stream {
  written: number;
  closed: Promise<{ early: boolean }>;
}

function endlessBody(stream: { current?: Stream }) {
  return (_request: IncomingMessage, response: ServerResponse) => {
    const state: Stream = {
      written: 0,
      closed: new Promise((resolve) => response.once('close', () => resolve({ early: !response.writableFinished }))),
    };
    stream.current = state;
    let open = true;
    void state.closed.then(() => (open = false));
    response.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    void (async () => {
      while (open && state.written < streamLimit) {
        state.written += chunk.length;
        if (!response.write(chunk)) await Promise.race([new Promise((r) => response.once('drain', r)), state.closed]);
      }
      if (open) response.end();
    })();
  };
}

const oversized = (bytes: number) => (_request: IncomingMessage, response: ServerResponse) => {
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(bytes) });
  response.write('[');
};

const stalling = (_request: IncomingMessage, response: ServerResponse) => {
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
  response.write('{"data":[');
};

const silent = () => undefined;

/** The rejection of `promise`, checked to be a ProviderError of the class that carries none of the secrets. */
async function failure(promise: Promise<unknown>, errorClass: ProviderErrorClass, secrets: readonly string[]): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect(providerError.errorClass, providerError.message).toBe(errorClass);
  const dump = `${providerError.message}\n${providerError.stack ?? ''}\n${inspect(providerError, { depth: 10, showHidden: true })}`;
  for (const secret of secrets) expect(dump).not.toContain(secret);
  return providerError;
}

/** Everything written through console while the test runs. */
function captureLogs(): string[] {
  const lines: string[] = [];
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(format(...args)));
  }
  return lines;
}

interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One real client, driven through its first request (for Geotab, the Authenticate that carries the password). */
interface Client {
  name: string;
  /** Starts every message the client's first request can produce. */
  what: string;
  secret: string;
  call(baseUrl: string, options?: CallOptions): Promise<unknown>;
  /** An error answer that quotes the secret back. */
  echo(response: ServerResponse, secret: string): void;
}

const samsaraToken = 'samsara-token-8d1f0c2b77';
const geotabLogin = { database: 'fleetwire_demo', userName: 'ops@fleetwire.test', password: 'geotab-Pa55-9f3e1d' };
const traccarToken = 'traccar-token-51ae6c09d4';

const clients: Client[] = [
  {
    name: 'Samsara (createSamsaraClient)',
    what: 'Samsara GET /fleet/vehicles/stats/feed: ',
    secret: samsaraToken,
    call: (baseUrl, o = {}) => createSamsaraClient({ baseUrl, apiToken: samsaraToken, timeoutMs: o.timeoutMs }).statsFeed({ types: ['gps'], signal: o.signal }),
    echo: (response, secret) => sendJson(response, 401, { message: `token ${secret} is revoked`, requestId: `r-${secret}` }),
  },
  {
    name: 'Geotab (createGeotabClient)',
    what: 'Geotab Authenticate: ',
    secret: geotabLogin.password,
    call: (baseUrl, o = {}) => createGeotabClient({ baseUrl, login: geotabLogin, session: new Map(), timeoutMs: o.timeoutMs, signal: o.signal }).get('Device'),
    echo: (response, secret) =>
      sendJson(response, 500, { error: { code: -32000, message: `no user with password ${secret}`, data: { type: `Sql${secret}` } }, jsonrpc: '2.0' }),
  },
  {
    name: 'Traccar (fetchTraccarDevices)',
    what: 'Traccar GET /api/devices: ',
    secret: traccarToken,
    call: (baseUrl, o = {}) =>
      fetchTraccarDevices({ baseUrl, token: traccarToken, signal: o.signal ?? new AbortController().signal, timeoutMs: o.timeoutMs ?? 10_000 }),
    echo: (response, secret) => sendJson(response, 403, { message: `token ${secret} may not list devices` }),
  },
];

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

describe.each(clients)('$name through the shared fetch', (client) => {
  it.each([307, 308])('answers a %i as permanent without contacting its Location or leaking the secret', async (status) => {
    const logs = captureLogs();
    const target = await serve((_request, response) => sendJson(response, 200, {}));
    const origin = await serve((request, response) => {
      response.writeHead(status, { location: `${target.url}${request.url ?? '/'}` });
      response.end();
    });
    const error = await failure(client.call(origin.url), 'permanent', [client.secret]);
    expect(error.message.startsWith(client.what)).toBe(true);
    expect(error.message).toMatch(new RegExp(`${status}.*redirect.*check the base URL`));
    expect(origin.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
    expect(logs.join('\n')).not.toContain(client.secret);
  });

  it('stops an endless body at the default 16 MiB cap as malformed_response', async () => {
    const stream: { current?: Stream } = {};
    const server = await serve(endlessBody(stream));
    const error = await failure(client.call(server.url), 'malformed_response', [client.secret]);
    expect(error.message.startsWith(client.what)).toBe(true);
    expect(error.message).toContain('16 MiB cap');
    expect(await stream.current!.closed).toEqual({ early: true });
    // The cap plus what socket buffers held: nowhere near everything the server was ready to send.
    expect(stream.current!.written).toBeLessThan(streamLimit / 2);
  });

  it('refuses a Content-Length over the default cap without reading the body', async () => {
    const server = await serve(oversized(defaultMaxBodyBytes + 1));
    const started = Date.now();
    const error = await failure(client.call(server.url, { timeoutMs: 5_000 }), 'malformed_response', [client.secret]);
    expect(error.message).toContain(`declares ${defaultMaxBodyBytes + 1} bytes, over the 16 MiB cap`);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('times out a body that stalls after the headers, as transient', async () => {
    const server = await serve(stalling);
    const error = await failure(client.call(server.url, { timeoutMs: 200 }), 'transient', [client.secret]);
    expect(error.message).toBe(`${client.what}timed out, no answer within 200 ms`);
  });

  it('says cancelled, not timed out, when the caller aborts', async () => {
    const server = await serve(silent);
    const controller = new AbortController();
    const pending = failure(client.call(server.url, { timeoutMs: 60_000, signal: controller.signal }), 'transient', [client.secret]);
    setTimeout(() => controller.abort(), 50);
    const error = await pending;
    expect(error.message).toContain('cancelled');
    expect(error.message).not.toContain('timed out');
  });

  it('keeps the secret out of the message when the server echoes it in its error body', async () => {
    const server = await serve((_request, response) => client.echo(response, client.secret));
    const error = await failure(client.call(server.url), client.name.startsWith('Geotab') ? 'transient' : 'auth', [client.secret]);
    expect(error.message.startsWith(client.what)).toBe(true);
    expect(server.requests).toHaveLength(1);
  });
});

describe('providerFetch', () => {
  const secret = 'shared-secret-0a9b8c7d';
  const request = (url: string, overrides: Partial<ProviderRequest> = {}): ProviderRequest => ({
    url,
    headers: { authorization: `Bearer ${secret}` },
    what: 'Test GET /things',
    timeoutMs: 5_000,
    secrets: [secret],
    ...overrides,
  });

  it('answers any non-redirect status with its headers and text; the client judges it', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/plain', 'x-request-id': 'r1' });
      // A euro sign split across two writes: the decoder streams, it does not split characters.
      response.write(Buffer.from([0x7b, 0xe2, 0x82]));
      response.end(Buffer.from([0xac, 0x7d]));
    });
    const answer = await providerFetch(request(`${server.url}/things`, { method: 'POST', body: '{"q":1}' }));
    expect(answer).toMatchObject({ status: 404, ok: false, text: '{€}' });
    expect(answer.headers.get('x-request-id')).toBe('r1');
    expect(server.requests[0]).toMatchObject({ method: 'POST', url: '/things' });
  });

  it.each([301, 302, 303, 307, 308])('never follows a %i', async (status) => {
    const target = await serve((_request, response) => sendJson(response, 200, {}));
    const origin = await serve((_request, response) => {
      response.writeHead(status, { location: `${target.url}/elsewhere` });
      response.end('moved');
    });
    const error = await failure(providerFetch(request(origin.url)), 'permanent', [secret]);
    expect(error.message).toBe(`Test GET /things: answered ${status}, a redirect, which is never followed; check the base URL`);
    expect(target.requests).toHaveLength(0);
  });

  it('stops an endless body at a configured cap, and accepts a body of exactly the cap', async () => {
    const stream: { current?: Stream } = {};
    const endless = await serve(endlessBody(stream));
    const error = await failure(providerFetch(request(endless.url, { maxBodyBytes: mib })), 'malformed_response', [secret]);
    expect(error.message).toBe('Test GET /things: body exceeds the 1 MiB cap; stopped reading');
    expect(await stream.current!.closed).toEqual({ early: true });
    expect(stream.current!.written).toBeLessThan(16 * mib);

    const exact = await serve((_request, response) => response.end('x'.repeat(1000)));
    await expect(providerFetch(request(exact.url, { maxBodyBytes: 1000 }))).resolves.toMatchObject({ status: 200, text: 'x'.repeat(1000) });
    await failure(providerFetch(request(exact.url, { maxBodyBytes: 999 })), 'malformed_response', [secret]);
  });

  it('refuses a Content-Length over the cap at once, and the server sees the connection drop', async () => {
    let closed: Promise<boolean> | undefined;
    const server = await serve((request, response) => {
      closed = new Promise((resolve) => response.once('close', () => resolve(!response.writableFinished)));
      oversized(2 * mib)(request, response);
    });
    const started = Date.now();
    const error = await failure(providerFetch(request(server.url, { maxBodyBytes: mib })), 'malformed_response', [secret]);
    expect(error.message).toBe(`Test GET /things: declares ${2 * mib} bytes, over the 1 MiB cap; not read`);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await closed).toBe(true);
  });

  it('times out a stalled body and tells a caller abort apart, even one aborted before the call', async () => {
    const server = await serve(stalling);
    const timedOut = await failure(providerFetch(request(server.url, { timeoutMs: 150 })), 'transient', [secret]);
    expect(timedOut.message).toBe('Test GET /things: timed out, no answer within 150 ms');

    const controller = new AbortController();
    const pending = failure(providerFetch(request(server.url, { signal: controller.signal })), 'transient', [secret]);
    setTimeout(() => controller.abort(), 50);
    expect((await pending).message).toBe('Test GET /things: cancelled (the caller aborted)');
    const early = await failure(providerFetch(request(server.url, { signal: AbortSignal.abort() })), 'transient', [secret]);
    expect(early.message).toContain('cancelled');
  });

  it('describes a network error by its code, never with the URL, its query or the body', async () => {
    const server = await serve(silent);
    const url = server.url;
    await servers.pop()!.close();
    const error = await failure(
      providerFetch(request(`${url}/things?vin=5YJ3E1EA7KF000001&token=${secret}`, { method: 'POST', body: `{"password":"${secret}"}` })),
      'transient',
      [secret],
    );
    expect(error.message).toBe('Test GET /things: network error (ECONNREFUSED)');
  });

  it('builds status errors with the class, Retry-After where it means something, and secrets redacted', async () => {
    const headers = new Headers({ 'retry-after': '2' });
    const answer = (status: number) => ({ status, ok: false, headers, text: '' });
    const limited = statusError('Test GET /things', answer(429), [secret], `: ${secret} is over its quota`);
    expect(limited).toMatchObject({ errorClass: 'rate_limited', retryAfterMs: 2000, message: 'Test GET /things: answered 429: [redacted] is over its quota' });
    expect(statusError('Test GET /things', answer(503), [secret])).toMatchObject({ errorClass: 'transient', retryAfterMs: 2000 });
    expect(statusError('Test GET /things', answer(500), [secret]).retryAfterMs).toBeUndefined();
    expect(statusError('Test GET /things', answer(401), [secret]).errorClass).toBe('auth');
    // A secret that contains another is hidden whole, not left half visible.
    expect(redact('session abc-123-xyz', ['abc', 'abc-123-xyz', ''])).toBe('session [redacted]');
  });
});
