/**
 * The Traccar adapter's socket plan, its prepare step (GET /api/devices) against the simulator, faults included
 * (every failure comes out as a ProviderError of the right class), and its classification of a 5xx upgrade
 * refusal by probing GET /api/devices with the same token, against the simulator and against Traccar's own error
 * answers (fixtures).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isProviderError, type ProviderError } from '../../../src/providers/provider-error.ts';
import { knownDevices } from '../../../src/providers/traccar/device-ids.ts';
import { startTraccarSimulator, type RunningTraccarSimulator } from '../../../src/sim/traccar/simulator.ts';
import { createTraccarStreamAdapter, traccarStreamAdapter } from '../../../src/providers/traccar/adapter.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';
import { context } from '../../support/stream-client.ts';
import { tokenUnreadable } from '../../../src/providers/traccar/client.ts';
import { errorAnswer } from './fixtures.ts';

describe('traccar socket plan', () => {
  it.each([
    ['http://traccar.test:8082', 'ws://traccar.test:8082/api/socket?token=abc'],
    ['https://traccar.test/', 'wss://traccar.test/api/socket?token=abc'],
    ['https://gw.test/traccar/', 'wss://gw.test/traccar/api/socket?token=abc'],
  ])('%s -> %s', (baseUrl, url) => {
    expect(traccarStreamAdapter.plan(context(baseUrl, { token: 'abc' }))).toEqual([{ key: 'api/socket', url, headers: {} }]);
  });

  it('encodes the token and keeps it out of the key', () => {
    const [plan] = traccarStreamAdapter.plan(context('http://h', { token: 'a b&c=d/é' }));
    expect(new URL(plan!.url).searchParams.get('token')).toBe('a b&c=d/é');
    expect(plan!.key).not.toContain('a b');
  });

  it('refuses a base URL that is not http(s) as a permanent error', () => {
    const error = catchError(() => traccarStreamAdapter.plan(context('ftp://h', { token: 't' })));
    expect(error.errorClass).toBe('permanent');
    expect(catchError(() => traccarStreamAdapter.plan(context('not a url', { token: 't' }))).errorClass).toBe('permanent');
  });
});

describe('traccar prepare (GET /api/devices)', () => {
  let sim: RunningTraccarSimulator | undefined;
  afterEach(async () => {
    await sim?.stop();
    sim = undefined;
  });

  async function start() {
    const fleet = new FleetModel({ seed: 11, vehicles: 3, startMs: Date.now() });
    sim = await startTraccarSimulator({ accounts: [{ credentials: { token: 'good' }, fleet }], tickMs: 60_000, keepaliveMs: 60_000 });
    return { sim, fleet };
  }

  const prepare = (url: string, token: string, session: Map<string, unknown>, adapter = traccarStreamAdapter) => {
    const ctx = context(url, { token });
    return adapter.prepare!(ctx, adapter.plan(ctx)[0]!, session);
  };

  it('learns every device id -> uniqueId', async () => {
    const { sim, fleet } = await start();
    const session = new Map<string, unknown>();
    await prepare(sim.url, 'good', session);
    expect([...knownDevices(session)]).toEqual(fleet.vehicles.map((v) => [v.traccarDeviceId, v.traccarUniqueId]));
  });

  it('answers a wrong token with an auth error', async () => {
    const { sim } = await start();
    expect((await rejection(prepare(sim.url, 'wrong', new Map()))).errorClass).toBe('auth');
  });

  it.each([
    ['rate_limit', 'rate_limited'],
    ['server_error', 'transient'],
    ['auth', 'auth'],
    ['malformed', 'malformed_response'],
    ['truncated', 'malformed_response'],
  ] as const)('a %s fault becomes %s, and the next call succeeds', async (fault, errorClass) => {
    const { sim } = await start();
    sim.faults.queue(fault);
    const error = await rejection(prepare(sim.url, 'good', new Map()));
    expect(error.errorClass).toBe(errorClass);
    if (fault === 'rate_limit') expect(error.retryAfterMs).toBe(1000);
    const session = new Map<string, unknown>();
    await prepare(sim.url, 'good', session);
    expect(knownDevices(session).size).toBe(3);
  });

  it('gives up on a request that never answers, as transient', async () => {
    const { sim } = await start();
    sim.faults.queue('timeout');
    const started = Date.now();
    const error = await rejection(prepare(sim.url, 'good', new Map(), createTraccarStreamAdapter({ requestTimeoutMs: 200 })));
    expect(error.errorClass).toBe('transient');
    expect(error.message).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops when the connection is cancelled', async () => {
    const { sim } = await start();
    sim.faults.queue('timeout');
    const controller = new AbortController();
    const ctx = { ...context(sim.url, { token: 'good' }), signal: controller.signal };
    const pending = traccarStreamAdapter.prepare!(ctx, traccarStreamAdapter.plan(ctx)[0]!, new Map());
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(pending);
    expect(error.message).toMatch(/aborted/);
  });

  it('reports a server that is not there as transient, without the token in the message', async () => {
    const error = await rejection(prepare('http://127.0.0.1:1', 'secret-token-value', new Map()));
    expect(error.errorClass).toBe('transient');
    expect(error.message).not.toContain('secret-token-value');
  });
});

describe('traccar classifyRefusal (a 5xx upgrade refusal, probed with GET /api/devices)', () => {
  let sim: RunningTraccarSimulator | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await sim?.stop();
    sim = undefined;
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  const classify = (baseUrl: string, token: string, adapter = traccarStreamAdapter) => {
    const ctx = context(baseUrl, { token });
    return adapter.classifyRefusal!(ctx, adapter.plan(ctx)[0]!, 503);
  };

  /** A server answering every request with `status` and `text`, recording the authorization it got. */
  async function answering(status: number, text: string, headers: Record<string, string> = {}): Promise<{ url: string; seen: string[] }> {
    const seen: string[] = [];
    server = createServer((request, response) => {
      seen.push(`${request.method} ${request.url} ${request.headers.authorization}`);
      response.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(text);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
  }

  async function startSim() {
    const fleet = new FleetModel({ seed: 12, vehicles: 2, startMs: Date.now() });
    sim = await startTraccarSimulator({ accounts: [{ credentials: { token: 'good' }, fleet }], tickMs: 60_000, keepaliveMs: 60_000 });
    return sim;
  }

  it('says auth when Traccar refuses the token over REST (401)', async () => {
    const running = await startSim();
    expect(await classify(running.url, 'wrong')).toBe('auth');
  });

  it('says transient when the token works over REST: the refusal was the server, not the token', async () => {
    const running = await startSim();
    expect(await classify(running.url, 'good')).toBe('transient');
  });

  it('says transient when the server answers 503 to everything, or is not there at all', async () => {
    const running = await startSim();
    running.setUnavailable(true);
    expect(await classify(running.url, 'good')).toBe('transient');
    expect(await classify(running.url, 'wrong')).toBe('transient');
    expect(await classify('http://127.0.0.1:1', 'good')).toBe('transient');
  });

  it('gives up on a probe that never answers, as transient', async () => {
    const running = await startSim();
    running.faults.queue('timeout');
    const started = Date.now();
    expect(await classify(running.url, 'good', createTraccarStreamAdapter({ requestTimeoutMs: 200 }))).toBe('transient');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('sends the token as the adapter does, to <base>/api/devices under a path prefix', async () => {
    const { url, seen } = await answering(401, '');
    expect(await classify(`${url}/traccar/`, 'tok en')).toBe('auth');
    expect(seen).toEqual(['GET /traccar/api/devices Bearer tok en']);
  });

  it.each([
    ['devices-signature-unreadable', 'auth'],
    ['devices-token-malformed', 'auth'],
    ['devices-database-down', 'transient'],
  ] as const)("reads Traccar's stack trace in %s: %s", async (name, expected) => {
    const answer = errorAnswer(name);
    expect(tokenUnreadable(answer.text)).toBe(expected === 'auth');
    const { url } = await answering(answer.status, answer.text);
    expect(await classify(url, 'some-token')).toBe(expected);
  });

  it.each([
    [403, 'auth'],
    [429, 'rate_limited'],
    [500, 'transient'],
    [502, 'transient'],
    [404, 'transient'],
    [200, 'transient'],
  ] as const)('a probe answered %s says %s', async (status, expected) => {
    const { url } = await answering(status, status === 200 ? '[]' : 'error');
    expect(await classify(url, 'some-token')).toBe(expected);
  });

  it('says permanent when /api/devices redirects: the base URL is not the API', async () => {
    const { url } = await answering(302, '', { location: 'https://elsewhere.test/' });
    expect(await classify(url, 'some-token')).toBe('permanent');
  });
});

function catchError(run: () => unknown): ProviderError {
  try {
    run();
  } catch (error) {
    if (isProviderError(error)) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    if (isProviderError(error)) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}
