/**
 * Shared pieces of the Geotab tests: a simulator on 127.0.0.1 with an injected clock, raw JSON-RPC calls, a stub
 * HTTP server for answers the simulator never gives, and helpers that flatten poll pages.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { GeotabPollPage } from '../../../src/providers/geotab/adapter.ts';
import { startGeotabSimulator, type GeotabSimulator, type GeotabSimulatorOptions } from '../../../src/sim/geotab/simulator.ts';
import type { GeotabLogin } from '../../../src/providers/geotab/wire.ts';
import { ProviderError, type ProviderErrorClass } from '../../../src/providers/provider-error.ts';
import type { DeviceReadings, PollAdapter, PollContext } from '../../../src/providers/poll-adapter.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';

export const login: GeotabLogin = { database: 'fleetwire_demo', userName: 'ops@fleetwire.test', password: 'pa55-W0rd-never-shown' };

export interface Harness {
  sim: GeotabSimulator;
  fleet: FleetModel;
  /** The simulator's clock, ms; whole seconds after the fleet's start. */
  now(): number;
  advance(ms: number): void;
}

const running: { stop(): Promise<void> }[] = [];

/** Stops every simulator and stub started by the current test (call from afterEach). */
export async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((r) => r.stop()));
}

/**
 * A simulator whose clock starts at the fleet's start, `pastMs` before the real time, so every served reading is
 * in the past however far a test advances (within `pastMs`). It enforces MyGeotab's GetFeed limit (one call per
 * entity type per second, SDK new.md 5.7.1902) unless told otherwise: clients pace on `advance`.
 */
export async function startHarness(
  options: { vehicles?: number; seed?: number; pastMs?: number } & Partial<Omit<GeotabSimulatorOptions, 'accounts' | 'now'>> = {},
): Promise<Harness> {
  const { vehicles = 8, seed = 42, pastMs = 30 * 60_000, ...simOptions } = options;
  let clock = Math.floor((Date.now() - pastMs) / 1000) * 1000;
  const fleet = new FleetModel({ seed, vehicles, startMs: clock });
  const sim = await startGeotabSimulator({ feedCallIntervalMs: 1000, ...simOptions, accounts: [{ credentials: login, fleet }], now: () => clock });
  running.push(sim);
  return {
    sim,
    fleet,
    now: () => clock,
    advance: (ms) => {
      clock += ms;
    },
  };
}

/** A sleep that moves the simulator's clock instead of waiting: the adapter's pacing, on the simulator's time. */
export const simulatedSleep = (h: Harness) => (ms: number) => {
  h.advance(ms);
  return Promise.resolve();
};

export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed body, or undefined when it is not JSON; tests read arbitrary JSON-RPC bodies. */
  json: any;
}

export async function rawRpc(url: string, method: string, params: Record<string, unknown> = {}, path = '/apiv1'): Promise<RawAnswer> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method, params, id: 1 }),
  });
  return readAnswer(response);
}

/** A JSON-RPC call posted as mg-api-node does: form-encoded, the request in the `JSON-RPC` field. */
export async function formRpc(url: string, method: string, params: Record<string, unknown> = {}): Promise<RawAnswer> {
  const response = await fetch(`${url}/apiv1`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `JSON-RPC=${encodeURIComponent(JSON.stringify({ method, params }))}`,
  });
  return readAnswer(response);
}

async function readAnswer(response: Response): Promise<RawAnswer> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export async function authenticate(url: string, who: GeotabLogin = login) {
  const answer = await rawRpc(url, 'Authenticate', { ...who });
  expect(answer.json?.result?.credentials, answer.text).toBeDefined();
  return answer.json.result.credentials as { database: string; sessionId: string; userName: string };
}

export interface StubServer {
  url: string;
  /** Parsed request bodies, in order. */
  requests: any[];
}

/** A plain HTTP server answering each JSON-RPC request with `handle`; it may also leave a request hanging. */
export async function startStub(
  handle: (body: any, response: ServerResponse, request: IncomingMessage) => void | Promise<void>,
): Promise<StubServer> {
  const requests: unknown[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      const body = JSON.parse(text) as unknown;
      requests.push(body);
      void Promise.resolve(handle(body, response, request)).catch(() => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  running.push({
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(typeof body === 'string' ? body : JSON.stringify(body));
}

export function rpcErrorBody(type: string, message = 'failed', code = -32000) {
  return { error: { code, name: 'JSONRPCError', message, data: { id: 'x', type, requestIndex: 0 }, errors: [{ name: type, message }] }, jsonrpc: '2.0' };
}

export function pollContext(url: string, overrides: Partial<PollContext<GeotabLogin>> = {}): PollContext<GeotabLogin> {
  return {
    baseUrl: url,
    credentials: login,
    options: {},
    lastSuccessAt: null,
    cursor: null,
    boundDevices: [],
    signal: new AbortController().signal,
    session: new Map(),
    ...overrides,
  };
}

/** Every page of one poll; bounded so a runaway adapter fails instead of hanging. */
export async function collect(adapter: PollAdapter<GeotabLogin>, context: PollContext<GeotabLogin>, maxPages = 1000): Promise<GeotabPollPage[]> {
  const pages: GeotabPollPage[] = [];
  for await (const page of adapter.poll(context)) {
    pages.push(page as GeotabPollPage);
    if (pages.length > maxPages) throw new Error('too many pages');
  }
  return pages;
}

export interface FlatReading {
  key: string;
  externalDeviceId: string;
  signal: string;
  value: unknown;
  observedAtMs: number;
}

export function flatten(devices: readonly DeviceReadings[]): FlatReading[] {
  return devices.flatMap((device) =>
    device.readings.map((r) => {
      const observedAtMs = Date.parse(r.observedAt);
      return { key: `${device.externalDeviceId}|${r.signal}|${observedAtMs}`, externalDeviceId: device.externalDeviceId, signal: r.signal, value: r.value, observedAtMs };
    }),
  );
}

export const allDevices = (pages: readonly GeotabPollPage[]) => pages.flatMap((p) => p.devices);

/** Awaits a rejection and checks it is a ProviderError of the class; returns it for further checks. */
export async function expectProviderError(promise: Promise<unknown>, errorClass: ProviderErrorClass): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a rejection').toBeInstanceOf(ProviderError);
  expect((error as ProviderError).errorClass, (error as ProviderError).message).toBe(errorClass);
  return error as ProviderError;
}
