/** Helpers shared by the Samsara tests: a scripted HTTP server, a simulator on an injected clock, poll drains. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import type { PollAdapter, PollContext, PollPage } from '../../../src/providers/poll-adapter.ts';
import { startSamsaraSimulator, type SamsaraSimulatorOptions } from '../../../src/sim/samsara/simulator.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';
import { servedKey, type ServedReading } from '../../../src/sim/ground-truth.ts';
import type { RunningSimulator } from '../../../src/sim/simulator.ts';

export const token = 'sim-token-3f9c1a7e5b';

/** A server whose every answer the test writes; it records what it was asked. */
export async function scriptedServer(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const requests: { url: URL; headers: IncomingMessage['headers'] }[] = [];
  const server = createServer((request, response) => {
    requests.push({ url: new URL(request.url ?? '/', 'http://localhost'), headers: request.headers });
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ClockedSimulator {
  sim: RunningSimulator;
  fleet: FleetModel;
  clock: { now: number };
  advance(ms: number): void;
}

export const startMs = Date.parse('2026-11-28T12:00:00.000Z');

/** A simulator whose clock moves only when the test says so. */
async function clockedSimulator(
  options: Partial<Omit<SamsaraSimulatorOptions, 'accounts' | 'now'>> & { vehicles?: number; seed?: number; extraTokens?: string[] } = {},
): Promise<ClockedSimulator> {
  const clock = { now: startMs };
  const fleet = new FleetModel({ seed: options.seed ?? 42, vehicles: options.vehicles ?? 6, startMs, timeScale: 10 });
  // Extra tokens share the fleet: one organization with several API tokens.
  const accounts = [token, ...(options.extraTokens ?? [])].map((apiToken) => ({ credentials: { apiToken }, fleet }));
  const sim = await startSamsaraSimulator({ ...options, accounts, now: () => clock.now });
  return {
    sim,
    fleet,
    clock,
    advance(ms) {
      clock.now += ms;
    },
  };
}

/**
 * Registers, in the calling test file, the stop of the simulator `start` last started; returns `start`, which
 * starts a clocked simulator with the given options.
 */
export function useClockedSimulator(): (options?: Parameters<typeof clockedSimulator>[0]) => Promise<ClockedSimulator> {
  let running: ClockedSimulator | undefined;
  afterEach(async () => {
    await running?.sim.stop();
    running = undefined;
  });
  return async (options = {}) => {
    running = await clockedSimulator(options);
    return running;
  };
}

export function pollContext(baseUrl: string, cursor: unknown, overrides: Partial<PollContext<{ apiToken: string }>> = {}): PollContext<{ apiToken: string }> {
  return {
    baseUrl,
    credentials: { apiToken: token },
    options: {},
    lastSuccessAt: null,
    cursor,
    boundDevices: [],
    signal: new AbortController().signal,
    session: new Map(),
    ...overrides,
  };
}

/** Every page of one poll; bounded, so a poll that never ends fails the test instead of hanging it. */
export async function drain(adapter: PollAdapter<{ apiToken: string }>, context: PollContext<{ apiToken: string }>, maxPages = 500) {
  const pages: PollPage[] = [];
  for await (const page of adapter.poll(context)) {
    pages.push(page);
    if (pages.length > maxPages) throw new Error(`poll did not end within ${maxPages} pages`);
  }
  return pages;
}

/** The readings of some pages, keyed as the ground truth keys them. */
export function readingsByKey(pages: readonly PollPage[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (const page of pages) {
    for (const device of page.devices) {
      for (const reading of device.readings) {
        map.set(servedKey({ externalDeviceId: device.externalDeviceId, signal: reading.signal, observedAtMs: Date.parse(reading.observedAt) }), reading.value);
      }
    }
  }
  return map;
}

export function truthByKey(truth: Map<string, ServedReading>): Map<string, unknown> {
  return new Map([...truth].map(([key, reading]) => [key, reading.value]));
}

export const sorted = (map: Map<string, unknown>) => [...map].sort(([a], [b]) => a.localeCompare(b));

export async function getJson(url: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }) {
  const response = await fetch(url, { headers });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, headers: response.headers, body: body as any };
}
