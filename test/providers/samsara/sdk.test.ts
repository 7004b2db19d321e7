/**
 * Samsara's official TypeScript client, @samsarahq/samsara (11.11.1, the Fern-generated SDK), run unmodified
 * against our simulator on loopback (`baseUrl`, BaseClientOptions): the stats feed followed with cursors, history,
 * the vehicle list through the SDK's own pager, an expired cursor, and 429s met by the SDK's own retry
 * (core/fetcher/requestWithRetries.js: 408, 429 and 5xx retried, `maxRetries` default 2) and, once retries run
 * out, its own errors (vehicleStats: SamsaraError with statusCode; vehicles.list: Samsara.TooManyRequestsError).
 * If the simulator drifts from what the SDK expects, these fail.
 */
import { Samsara, SamsaraClient, SamsaraError } from '@samsarahq/samsara';
import { describe, expect, it } from 'vitest';
import { samsaraRateLimits } from '../../../src/sim/samsara/simulator-limits.ts';
import { startMs, token, useClockedSimulator } from './support.ts';

const start = useClockedSimulator();
const sdk = (baseUrl: string, maxRetries?: number) => new SamsaraClient({ token, baseUrl, ...(maxRetries === undefined ? {} : { maxRetries }) });

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('the official Samsara SDK against the simulator', () => {
  it('follows the stats feed with cursors: the latest values first, then only what changed', async () => {
    const { sim, advance } = await start({ vehicles: 4, pageSize: 25 });
    const client = sdk(sim.url);
    const types: Samsara.GetVehicleStatsFeedRequestTypesItem[] = ['gps', 'evStateOfChargeMilliPercent', 'obdOdometerMeters'];
    let page = await client.vehicleStats.getVehicleStatsFeed({ types });
    expect(page.data.map((item) => item.id)).toHaveLength(4);
    for (const item of page.data) expect(item.gps).toHaveLength(1);
    while (page.pagination.hasNextPage) page = await client.vehicleStats.getVehicleStatsFeed({ types, after: page.pagination.endCursor });
    const firstTimes = new Set(page.data.flatMap((item) => (item.gps ?? []).map((p) => `${item.id}|${p.time}`)));

    advance(120_000);
    const changes: string[] = [];
    let after = page.pagination.endCursor;
    for (let pages = 0; pages < 200; pages += 1) {
      const next = await client.vehicleStats.getVehicleStatsFeed({ types, after });
      for (const item of next.data) {
        for (const point of item.gps ?? []) changes.push(`${item.id}|${point.time}`);
        for (const soc of item.evStateOfChargeMilliPercent ?? []) expect(soc.value).toBeGreaterThanOrEqual(0);
      }
      after = next.pagination.endCursor;
      if (!next.pagination.hasNextPage) break;
    }
    expect(changes.length).toBeGreaterThan(10);
    for (const change of changes) expect(Date.parse(change.split('|')[1]!)).toBeGreaterThan(startMs);
    expect(changes.some((c) => firstTimes.has(c))).toBe(false);
    // What the SDK read is exactly what the simulator says it served.
    expect(sim.groundTruth.all(token).filter((r) => r.signal === 'location' && r.observedAtMs > startMs)).toHaveLength(changes.length);
  });

  it('reads history between two times, paged', async () => {
    const { sim, advance } = await start({ vehicles: 3, pageSize: 40 });
    advance(300_000);
    const client = sdk(sim.url);
    const startTime = '2026-11-28T12:01:00Z';
    const endTime = '2026-11-28T12:03:00.000Z';
    const times: number[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 100; pages += 1) {
      const page = await client.vehicleStats.getVehicleStatsHistory({ startTime, endTime, types: ['evStateOfChargeMilliPercent', 'engineStates'], after });
      for (const item of page.data) for (const entry of item.evStateOfChargeMilliPercent ?? []) times.push(Date.parse(entry.time));
      if (!page.pagination.hasNextPage) break;
      after = page.pagination.endCursor;
    }
    expect(times.length).toBeGreaterThan(0);
    for (const t of times) expect(t >= Date.parse(startTime) && t <= Date.parse(endTime)).toBe(true);
  });

  it('lists every vehicle through its own pager', async () => {
    const { sim, fleet } = await start({ vehicles: 7 });
    const pager = await sdk(sim.url).vehicles.list({ limit: 3 });
    const ids: string[] = [];
    for await (const vehicle of pager) ids.push(vehicle.id);
    expect(ids).toEqual(fleet.vehicles.map((v) => v.samsaraId));
    // 3 + 3 + 1: the pager stops on the empty endCursor of the last page.
    expect(sim.served.requests).toBe(3);
  });

  it('gets a 400 SamsaraError, not retried, for an expired cursor', async () => {
    const { sim, advance } = await start({ vehicles: 2, cursorLifetimeMs: 60_000 });
    const client = sdk(sim.url);
    const first = await client.vehicleStats.getVehicleStatsFeed({ types: ['gps'] });
    advance(61_000);
    const served = sim.served.requests;
    const error = await thrown(client.vehicleStats.getVehicleStatsFeed({ types: ['gps'], after: first.pagination.endCursor }));
    expect(error).toBeInstanceOf(SamsaraError);
    expect((error as SamsaraError).statusCode).toBe(400);
    expect(sim.served.requests).toBe(served + 1);
  });

  it('retries a 429 itself and succeeds, and throws its own error once its retries are spent', async () => {
    const { sim } = await start({ vehicles: 2 });
    sim.faults.queue('rate_limit');
    const recovered = await sdk(sim.url).vehicleStats.getVehicleStatsFeed({ types: ['gps'] });
    expect(recovered.data).toHaveLength(2);
    expect(sim.faults.injected.rate_limit).toBe(1);
    expect(sim.served.requests).toBe(2);

    sim.faults.queue('rate_limit');
    sim.faults.queue('rate_limit');
    const error = await thrown(sdk(sim.url, 1).vehicleStats.getVehicleStatsFeed({ types: ['gps'] }));
    expect(error).toBeInstanceOf(SamsaraError);
    expect((error as SamsaraError).statusCode).toBe(429);
    expect(sim.served.requests).toBe(4);
  }, 20_000);

  it('meets the documented 25/s limit of /fleet/vehicles as TooManyRequestsError when it may not retry', async () => {
    const { sim } = await start({ vehicles: 2, rateLimits: { endpointsPerSecond: samsaraRateLimits.endpointsPerSecond } });
    const client = sdk(sim.url, 0);
    const answers = await Promise.all(Array.from({ length: 30 }, () => thrown(client.vehicles.list())));
    const limited = answers.filter((a) => a instanceof Samsara.TooManyRequestsError);
    expect(limited).toHaveLength(5);
    expect(answers.filter((a) => a === undefined)).toHaveLength(25);
    const body = (limited[0] as Samsara.TooManyRequestsError).body as { message: string; requestId: string };
    expect(body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
    expect(Number((limited[0] as Samsara.TooManyRequestsError).rawResponse?.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
