/**
 * The Samsara client against a scripted server: what it sends, and the class of every failure it can meet.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ProviderError, type ProviderErrorClass } from '../../../src/providers/provider-error.ts';
import { createSamsaraPollAdapter } from '../../../src/providers/samsara/adapter.ts';
import { CursorRejectedError, createSamsaraClient } from '../../../src/providers/samsara/client.ts';
import { samsaraContract } from '../../../src/providers/samsara/contract.ts';
import { samsaraApiVersion } from '../../../src/providers/samsara/wire.ts';
import { drain, pollContext, scriptedServer, token } from './support.ts';

const page = { data: [], pagination: { endCursor: 'c2', hasNextPage: false } };
let server: Awaited<ReturnType<typeof scriptedServer>> | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect(providerError.message).not.toContain(token);
  return providerError;
}

function answering(status: number, body: string, headers: Record<string, string> = {}) {
  return scriptedServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(body);
  });
}

describe('Samsara client', () => {
  it('sends the bearer token, comma-separated types, vehicle ids and the cursor', async () => {
    server = await answering(200, JSON.stringify(page));
    const client = createSamsaraClient({ baseUrl: `${server.url}/`, apiToken: token });
    await expect(client.statsFeed({ types: ['gps', 'engineStates'], vehicleIds: ['1', '2'], after: 'c1' })).resolves.toEqual(page);
    await client.statsFeed({ types: ['evChargingStatus'], after: '' });
    await client.statsHistory({ types: ['gps'], startTime: '2026-11-28T10:00:00Z', endTime: '2026-11-28T11:00:00Z' });
    await client.statsSnapshot({ types: ['gps'] });

    const [first, second, history, snapshot] = server.requests;
    expect(first!.headers.authorization).toBe(`Bearer ${token}`);
    expect(first!.url.pathname).toBe('/fleet/vehicles/stats/feed');
    expect(Object.fromEntries(first!.url.searchParams)).toEqual({ types: 'gps,engineStates', vehicleIds: '1,2', after: 'c1' });
    // An empty cursor is the first call: no `after` at all.
    expect(Object.fromEntries(second!.url.searchParams)).toEqual({ types: 'evChargingStatus' });
    expect(history!.url.pathname).toBe('/fleet/vehicles/stats/history');
    expect(Object.fromEntries(history!.url.searchParams)).toEqual({ types: 'gps', startTime: '2026-11-28T10:00:00Z', endTime: '2026-11-28T11:00:00Z' });
    expect(snapshot!.url.pathname).toBe('/fleet/vehicles/stats');
  });

  // developers.samsara.com/docs/versioning: versions are dates ("e.g. 2020-06-15"), sent as `X-Samsara-Version`;
  // without it a request gets its token's version. The official SDK pins 2025-06-11 (BaseClient.ts).
  it('sends X-Samsara-Version on every request: the SDK’s 2025-06-11 by default, the connection’s option if set', async () => {
    server = await answering(200, JSON.stringify(page));
    expect(samsaraApiVersion).toBe('2025-06-11');
    const client = createSamsaraClient({ baseUrl: server.url, apiToken: token });
    await client.statsFeed({ types: ['gps'] });
    await client.statsHistory({ types: ['gps'], startTime: '2026-11-28T10:00:00Z', endTime: '2026-11-28T11:00:00Z' });
    await client.statsSnapshot({ types: ['gps'] });
    expect(server.requests.map((r) => r.headers['x-samsara-version'])).toEqual(['2025-06-11', '2025-06-11', '2025-06-11']);

    const options = samsaraContract.options.parse({ apiVersion: '2024-04-01' });
    await drain(createSamsaraPollAdapter({ typeGroups: [['gps']] }), pollContext(server.url, null, { options }));
    expect(server.requests.at(-1)!.headers['x-samsara-version']).toBe('2024-04-01');
    // The option is checked as a date, and defaults to the SDK's version.
    expect(samsaraContract.options.safeParse({ apiVersion: 'latest' }).success).toBe(false);
    expect(samsaraContract.options.parse({})).toEqual({ apiVersion: '2025-06-11', restartOverlapMinutes: 15 });
  });

  it('tells a 400 to a request with a cursor (a refused cursor) from any other 400', async () => {
    server = await answering(400, JSON.stringify({ message: 'cursor expired', requestId: 'r-9' }));
    const client = createSamsaraClient({ baseUrl: server.url, apiToken: token });
    const refused = await failure(client.statsFeed({ types: ['gps'], after: 'old' }));
    expect(refused).toBeInstanceOf(CursorRejectedError);
    expect(refused.errorClass).toBe('permanent');
    expect(refused.message).toContain('cursor expired');
    const plain = await failure(client.statsFeed({ types: ['gps'] }));
    expect(plain).not.toBeInstanceOf(CursorRejectedError);
    expect(plain.errorClass).toBe('permanent');
  });

  it('counts auxInput3-10 as one type, as Samsara does', async () => {
    server = await answering(200, JSON.stringify(page));
    const client = createSamsaraClient({ baseUrl: server.url, apiToken: token });
    await client.statsFeed({ types: ['engineStates', 'obdOdometerMeters', 'auxInput3', 'auxInput4'] });
    expect(server.requests).toHaveLength(1);
    expect((await failure(client.statsFeed({ types: ['engineStates', 'obdOdometerMeters', 'auxInput1', 'auxInput2'] }))).errorClass).toBe('permanent');
    expect(server.requests).toHaveLength(1);
  });

  it('refuses more than three types, or none, without sending a request', async () => {
    server = await answering(200, JSON.stringify(page));
    const client = createSamsaraClient({ baseUrl: server.url, apiToken: token });
    const tooMany = await failure(client.statsFeed({ types: ['gps', 'engineStates', 'evChargingStatus', 'obdOdometerMeters'] }));
    expect(tooMany.errorClass).toBe('permanent');
    expect((await failure(client.statsFeed({ types: [] }))).errorClass).toBe('permanent');
    expect(server.requests).toHaveLength(0);
  });

  const statusCases: [number, ProviderErrorClass][] = [
    [400, 'permanent'],
    [401, 'auth'],
    [403, 'auth'],
    [404, 'permanent'],
    [408, 'transient'],
    [500, 'transient'],
    [503, 'transient'],
  ];
  it.each(statusCases)('classifies HTTP %i as %s and keeps the message and request id', async (status, errorClass) => {
    server = await answering(status, JSON.stringify({ message: `failed with ${status}`, requestId: 'req-123' }));
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe(errorClass);
    expect(error.message).toContain(`failed with ${status}`);
    expect(error.message).toContain('req-123');
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('classifies 429 as rate_limited with a fractional Retry-After in milliseconds', async () => {
    server = await answering(429, JSON.stringify({ message: 'Rate limit exceeded', requestId: 'r' }), { 'retry-after': '0.40235' });
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('rate_limited');
    expect(error.retryAfterMs).toBe(403);
  });

  it('classifies an error page that is not JSON by its status alone', async () => {
    server = await answering(502, '<html>Bad gateway</html>');
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('transient');
  });

  it('never puts the token in a message, even when the server echoes it', async () => {
    server = await answering(401, JSON.stringify({ message: `token ${token} is revoked`, requestId: 'r' }));
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('auth');
    expect(error.message).toContain('[redacted]');
  });

  it('treats a redirect as a configuration error and does not follow it', async () => {
    server = await answering(302, '', { location: 'http://127.0.0.1:1/elsewhere' });
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('permanent');
    expect(server.requests).toHaveLength(1);
  });

  it.each([
    ['a body that is not JSON', '{"data": [', {}],
    ['a body without pagination', JSON.stringify({ data: [] }), {}],
    ['a body whose data is not a list', JSON.stringify({ data: {}, pagination: { endCursor: '', hasNextPage: false } }), {}],
  ])('classifies %s as malformed_response', async (_name, body) => {
    server = await answering(200, body);
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('malformed_response');
  });

  it('classifies a body that ends short of its length as malformed_response', async () => {
    const body = JSON.stringify(page);
    server = await scriptedServer((request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      response.write(body.slice(0, 10));
      request.socket.end();
    });
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('malformed_response');
  });

  it('times out a request that gets no answer, as transient', async () => {
    server = await scriptedServer(() => {
      // Never answers.
    });
    const started = Date.now();
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token, timeoutMs: 150 }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('transient');
    expect(error.message).toContain('150 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('times out a body that stalls after the headers, as transient', async () => {
    server = await scriptedServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      response.write('{"data":[');
    });
    const error = await failure(createSamsaraClient({ baseUrl: server.url, apiToken: token, timeoutMs: 150 }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('transient');
  });

  it('stops when the caller aborts', async () => {
    server = await scriptedServer(() => {
      // Never answers.
    });
    const controller = new AbortController();
    const pending = createSamsaraClient({ baseUrl: server.url, apiToken: token }).statsFeed({ types: ['gps'], signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    const error = await failure(pending);
    expect(error.errorClass).toBe('transient');
    expect(error.message).toContain('cancelled');
  });

  it('classifies a refused connection as transient', async () => {
    server = await answering(200, '{}');
    const url = server.url;
    await server.close();
    server = undefined;
    const error = await failure(createSamsaraClient({ baseUrl: url, apiToken: token }).statsFeed({ types: ['gps'] }));
    expect(error.errorClass).toBe('transient');
  });
});
