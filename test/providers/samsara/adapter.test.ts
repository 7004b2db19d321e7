/**
 * The Samsara poll adapter end to end against the simulator over real HTTP: what it yields is exactly what the
 * simulator served (ground truth, keys and values), cursors resume without loss or repeats, and every fault
 * arrives as the right ProviderError class.
 */
import { describe, expect, it } from 'vitest';
import type { PollPage } from '../../../src/providers/poll-adapter.ts';
import { ProviderError, type ProviderErrorClass } from '../../../src/providers/provider-error.ts';
import { createSamsaraPollAdapter, defaultTypeGroups, groupKey, samsaraPollAdapter, type SamsaraCursor } from '../../../src/providers/samsara/adapter.ts';
import type { FaultKind } from '../../../src/sim/faults.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { drain, pollContext, readingsByKey, scriptedServer, sorted, startMs, token, truthByKey, useClockedSimulator } from './support.ts';

const start = useClockedSimulator();

async function pollError(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  expect((error as Error).message).not.toContain(token);
  return error as ProviderError;
}

describe('Samsara poll adapter', () => {
  it('yields exactly what the simulator served, then only what is new from the returned cursor', async () => {
    const { sim, fleet, advance, clock } = await start({ vehicles: 6, pageSize: 40 });

    const first = await drain(samsaraPollAdapter, pollContext(sim.url, null));
    expect(first.every((page) => page.requests === 1)).toBe(true);
    const firstReadings = readingsByKey(first);
    expect(firstReadings.size).toBeGreaterThan(0);
    expect(sorted(firstReadings)).toEqual(sorted(truthByKey(sim.groundTruth.unique(token))));
    expectValidReadings(first.flatMap((p) => p.devices), { notAfterMs: clock.now });
    // The first poll is the latest values: one call per group, at most one reading of a signal per vehicle.
    expect(first).toHaveLength(defaultTypeGroups.length);
    const firstCursor = first.at(-1)!.cursor as SamsaraCursor;
    expect(Object.keys(firstCursor.feeds).sort()).toEqual(defaultTypeGroups.map(groupKey).sort());

    advance(240_000);
    const second = await drain(samsaraPollAdapter, pollContext(sim.url, firstCursor));
    expect(second.length).toBeGreaterThan(defaultTypeGroups.length);
    const secondReadings = readingsByKey(second);
    expect(secondReadings.size).toBeGreaterThan(50);
    for (const key of secondReadings.keys()) {
      expect(firstReadings.has(key), key).toBe(false);
      expect(Number(key.split('|')[2])).toBeGreaterThan(startMs);
    }
    expectValidReadings(second.flatMap((p) => p.devices), { notAfterMs: clock.now });
    const union = new Map([...firstReadings, ...secondReadings]);
    expect(sorted(union)).toEqual(sorted(truthByKey(sim.groundTruth.unique(token))));
    // Nothing was served twice (the cursors never overlapped), and the adapter yielded each served reading once.
    expect(sim.groundTruth.all(token)).toHaveLength(union.size);
    expect(readingCount(first) + readingCount(second)).toBe(union.size);
    const ids = new Set(fleet.vehicles.map((v) => v.samsaraId));
    for (const page of second) for (const device of page.devices) expect(ids.has(device.externalDeviceId)).toBe(true);

    // Nothing moved: a third poll costs one request per group and yields nothing.
    const third = await drain(samsaraPollAdapter, pollContext(sim.url, second.at(-1)!.cursor));
    expect(third).toHaveLength(defaultTypeGroups.length);
    expect(third.flatMap((p) => p.devices)).toEqual([]);
  });

  it('carries the whole cursor object on every page, with only that page’s group advanced', async () => {
    const { sim, advance } = await start({ vehicles: 3, pageSize: 30 });
    const first = await drain(samsaraPollAdapter, pollContext(sim.url, null));
    advance(120_000);
    let previous = first.at(-1)!.cursor as SamsaraCursor;
    const pages = await drain(samsaraPollAdapter, pollContext(sim.url, previous));
    for (const page of pages) {
      const cursor = page.cursor as SamsaraCursor;
      const changed = Object.keys(cursor.feeds).filter((key) => cursor.feeds[key] !== previous.feeds[key]);
      expect(Object.keys(cursor.feeds).sort()).toEqual(defaultTypeGroups.map(groupKey).sort());
      expect(changed.length).toBeLessThanOrEqual(1);
      previous = cursor;
    }
  });

  it('does not filter by bound devices: unbound vehicles still reach ingest', async () => {
    const { sim, fleet } = await start({ vehicles: 4 });
    const pages = await drain(samsaraPollAdapter, pollContext(sim.url, null, { boundDevices: [fleet.vehicles[0]!.samsaraId] }));
    const devices = new Set(pages.flatMap((p) => p.devices.map((d) => d.externalDeviceId)));
    expect(devices).toEqual(new Set(fleet.vehicles.map((v) => v.samsaraId)));
  });

  it('yields the pages before a failure with their cursors, and resumes from them without loss', async () => {
    const { sim, advance } = await start({ vehicles: 4, pageSize: 20, rateLimitPerSecond: 1 });
    const pages: PollPage[] = [];
    const failed = await pollError(
      (async () => {
        for await (const page of samsaraPollAdapter.poll(pollContext(sim.url, null))) pages.push(page);
      })(),
    );
    expect(failed.errorClass).toBe('rate_limited');
    expect(failed.retryAfterMs).toBe(1000);
    expect(pages).toHaveLength(1);

    // The runner commits what it got and comes back after Retry-After.
    let cursor = pages[0]!.cursor;
    const all = [...pages];
    for (let attempt = 0; attempt < 100; attempt += 1) {
      advance(1000);
      try {
        for await (const page of samsaraPollAdapter.poll(pollContext(sim.url, cursor))) {
          all.push(page);
          cursor = page.cursor;
        }
        break;
      } catch (error) {
        expect((error as ProviderError).errorClass).toBe('rate_limited');
      }
    }
    expect(sorted(readingsByKey(all))).toEqual(sorted(truthByKey(sim.groundTruth.unique(token))));
  });

  const faultClasses: [FaultKind, ProviderErrorClass][] = [
    ['server_error', 'transient'],
    ['timeout', 'transient'],
    ['malformed', 'malformed_response'],
    ['truncated', 'malformed_response'],
    ['auth', 'auth'],
    ['rate_limit', 'rate_limited'],
  ];
  it.each(faultClasses)('surfaces a %s fault as %s', async (fault, errorClass) => {
    const { sim } = await start({ vehicles: 2, timeoutMs: 150 });
    sim.faults.queue(fault);
    const error = await pollError(drain(samsaraPollAdapter, pollContext(sim.url, null)));
    expect(error.errorClass).toBe(errorClass);
    if (fault === 'rate_limit') expect(error.retryAfterMs).toBe(375);
    expect(sim.faults.injected[fault]).toBe(1);
    expect(sim.groundTruth.all()).toHaveLength(0);
  });

  it('times out on its own when the provider holds the request', async () => {
    const { sim } = await start({ vehicles: 2, timeoutMs: 30_000 });
    sim.faults.queue('timeout');
    const adapter = createSamsaraPollAdapter({ timeoutMs: 100 });
    const started = Date.now();
    const error = await pollError(drain(adapter, pollContext(sim.url, null)));
    expect(error.errorClass).toBe('transient');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('surfaces a wrong token as auth', async () => {
    const { sim } = await start();
    const error = await pollError(drain(samsaraPollAdapter, pollContext(sim.url, null, { credentials: { apiToken: 'not-the-token' } })));
    expect(error.errorClass).toBe('auth');
  });

  it('restarts from the latest values when the stored cursor cannot be read', async () => {
    const { sim } = await start({ vehicles: 2 });
    const pages = await drain(samsaraPollAdapter, pollContext(sim.url, { something: 'else' }));
    expect(pages).toHaveLength(defaultTypeGroups.length);
    expect(pages.flatMap((p) => p.devices).length).toBeGreaterThan(0);
    // A cursor for a group that no longer exists is dropped, not carried forever.
    const again = await drain(samsaraPollAdapter, pollContext(sim.url, { feeds: { 'gps,ecuSpeedMph': 'eyJrIjoiZmVlZCIsInMiOjB9' } }));
    expect(Object.keys((again.at(-1)!.cursor as SamsaraCursor).feeds).sort()).toEqual(defaultTypeGroups.map(groupKey).sort());
  });

  it('refuses a page that promises more without a new cursor, instead of looping', async () => {
    const server = await scriptedServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ data: [], pagination: { endCursor: '', hasNextPage: true } }));
    });
    try {
      const error = await pollError(drain(samsaraPollAdapter, pollContext(server.url, null)));
      expect(error.errorClass).toBe('malformed_response');
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('stops a group after maxPagesPerGroup pages even if the provider always has more', async () => {
    let n = 0;
    const server = await scriptedServer((_request, response) => {
      n += 1;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ data: [], pagination: { endCursor: `c${n}`, hasNextPage: true } }));
    });
    try {
      const adapter = createSamsaraPollAdapter({ maxPagesPerGroup: 3 });
      const pages = await drain(adapter, pollContext(server.url, null));
      expect(pages).toHaveLength(3 * defaultTypeGroups.length);
      // Round-robin: the groups take turns.
      const groupsInOrder = server.requests.map((r) => r.url.searchParams.get('types'));
      expect(groupsInOrder.slice(0, defaultTypeGroups.length)).toEqual(defaultTypeGroups.map(groupKey));
      expect(server.requests.every((r) => !r.url.searchParams.has('vehicleIds'))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('refuses a type group of more than three types', () => {
    expect(() => createSamsaraPollAdapter({ typeGroups: [['gps', 'engineStates', 'evChargingStatus', 'obdOdometerMeters']] })).toThrow();
  });
});

function readingCount(pages: readonly PollPage[]): number {
  return pages.reduce((n, page) => n + page.devices.reduce((m, device) => m + device.readings.length, 0), 0);
}
