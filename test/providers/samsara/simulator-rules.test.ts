/**
 * The Samsara simulator keeps the request rules Samsara documents, checked over raw HTTP against the sources:
 * - the stat types and decorations of the official SDK's request enums (@samsarahq/samsara 11.11.1,
 *   GetVehicleStatsFeedRequestTypesItem / ...DecorationsItem), read from the installed SDK, not from our copy;
 * - the `types` text of GetVehicleStatsFeedRequest: "up to 3" types, "auxInput3-auxInput10 count as a single
 *   type", its own example `types=engineStates,obdOdometerMeters,auxInput3,auxInput4`; "up to 2" decorations;
 * - `GET /fleet/vehicles` paging (SDK ListVehiclesRequest: `limit` default and max 512, `after`);
 * - cursors that expire ("Cursors expire after 30 days", developers.samsara.com/docs/pagination);
 * - the rate limits of developers.samsara.com/docs/rate-limits (150/s per token, 200/s per organization) and the
 *   SDK's vehicles.list doc (25/s), answered 429 with a fractional Retry-After.
 */
import { Samsara } from '@samsarahq/samsara';
import { describe, expect, it } from 'vitest';
import { samsaraDecorationTypes, samsaraStatTypes } from '../../../src/providers/samsara/wire.ts';
import { samsaraRateLimits } from '../../../src/sim/samsara/simulator-limits.ts';
import { hasObdOdometer } from '../../../src/sim/samsara/simulator-stats.ts';
import { getJson, useClockedSimulator } from './support.ts';

const start = useClockedSimulator();
const feed = (url: string, params: string) => getJson(`${url}/fleet/vehicles/stats/feed?${params}`);

describe('Samsara simulator: documented stat types and decorations', () => {
  it('knows exactly the SDK’s stat types and decorations', () => {
    expect([...samsaraStatTypes].sort()).toEqual(Object.values(Samsara.GetVehicleStatsFeedRequestTypesItem).sort());
    expect([...samsaraStatTypes].sort()).toEqual(Object.values(Samsara.GetVehicleStatsHistoryRequestTypesItem).sort());
    expect([...samsaraDecorationTypes].sort()).toEqual(Object.values(Samsara.GetVehicleStatsFeedRequestDecorationsItem).sort());
  });

  it('accepts every type the SDK may ask for, and answers those it has no data for with no entries', async () => {
    const { sim } = await start({ vehicles: 3 });
    const types = Object.values(Samsara.GetVehicleStatsFeedRequestTypesItem);
    for (const type of types) {
      const answer = await feed(sim.url, `types=${type}`);
      expect(answer.status, type).toBe(200);
      expect(answer.body.pagination.endCursor, type).toEqual(expect.any(String));
    }
    // The ones the audit found refused: valid, and an electric fleet has nothing for them.
    for (const type of ['fuelPercents', 'obdEngineSeconds', 'auxInput5', 'faultCodes']) {
      const answer = await feed(sim.url, `types=${type}`);
      expect(answer.status, type).toBe(200);
      expect(answer.body.data, type).toEqual([]);
    }
    const history = await getJson(`${sim.url}/fleet/vehicles/stats/history?types=fuelPercents&startTime=2026-11-28T11:00:00Z&endTime=2026-11-28T12:00:00Z`);
    expect(history.status).toBe(200);
    expect(history.body.data).toEqual([]);
  });

  it('counts auxInput3 to auxInput10 as one type against the limit of three', async () => {
    const { sim } = await start();
    // The SDK's own example, and all eight of the grouped inputs next to two other types.
    expect((await feed(sim.url, 'types=engineStates,obdOdometerMeters,auxInput3,auxInput4')).status).toBe(200);
    const aux3to10 = Array.from({ length: 8 }, (_, i) => `auxInput${i + 3}`).join(',');
    expect((await feed(sim.url, `types=gps,engineStates,${aux3to10}`)).status).toBe(200);
    // auxInput1, auxInput2 and auxInput11-13 still count one each.
    for (const types of ['engineStates,obdOdometerMeters,auxInput1,auxInput2', 'gps,engineStates,auxInput3,auxInput11', 'gps,auxInput1,auxInput2,auxInput12']) {
      const answer = await feed(sim.url, `types=${types}`);
      expect(answer.status, types).toBe(400);
      expect(answer.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
    }
  });

  it('decorates each non-EV entry with the values at its time, up to two documented decorations', async () => {
    const { sim, fleet, advance } = await start({ vehicles: 8, pageSize: 5000 });
    const first = await feed(sim.url, 'types=engineStates&decorations=gps,obdOdometerMeters');
    advance(600_000);
    const answer = await feed(sim.url, `types=engineStates,evStateOfChargeMilliPercent&decorations=gps,obdOdometerMeters&after=${first.body.pagination.endCursor}`);
    expect(answer.status).toBe(200);
    let checked = 0;
    for (const item of answer.body.data) {
      const vehicle = fleet.vehicles.find((v) => v.samsaraId === item.id)!.index;
      for (const entry of item.engineStates ?? []) {
        const at = Date.parse(entry.time);
        const before = fleet.samplesFrom(fleet.startSeq).filter((s) => s.vehicle === vehicle && s.observedAtMs <= at);
        const position = before.filter((s) => s.signal === 'location').at(-1)!;
        const odometer = before.filter((s) => s.signal === 'odometer_km').at(-1)!;
        // Decorations of gps and the basic types carry no time of their own.
        expect(entry.decorations.gps).toMatchObject({ latitude: (position.value as { lat: number }).lat, longitude: (position.value as { lon: number }).lon });
        expect(entry.decorations.gps).not.toHaveProperty('time');
        if (hasObdOdometer(vehicle)) expect(entry.decorations.obdOdometerMeters).toEqual({ value: Math.round((odometer.value as number) * 1000) });
        else expect(entry.decorations).not.toHaveProperty('obdOdometerMeters');
        checked += 1;
      }
      // The SDK's ev* list entries have no decorations field.
      for (const entry of item.evStateOfChargeMilliPercent ?? []) expect(entry).not.toHaveProperty('decorations');
    }
    expect(checked).toBeGreaterThan(0);

    for (const decorations of ['gps,obdOdometerMeters,engineStates', 'evStateOfChargeMilliPercent', 'gpsOdometerMeters', 'nonsense']) {
      expect((await feed(sim.url, `types=engineStates&decorations=${decorations}`)).status, decorations).toBe(400);
    }
  });

  it('omits obdOdometerMeters for the vehicles without OBD coverage, which still have gpsOdometerMeters', async () => {
    const { sim, fleet } = await start({ vehicles: 8 });
    const answer = await feed(sim.url, 'types=obdOdometerMeters,gpsOdometerMeters');
    expect(answer.body.data).toHaveLength(8);
    for (const item of answer.body.data) {
      const vehicle = fleet.vehicles.find((v) => v.samsaraId === item.id)!.index;
      expect(item.gpsOdometerMeters).toHaveLength(1);
      if (hasObdOdometer(vehicle)) expect(item.obdOdometerMeters).toEqual(item.gpsOdometerMeters);
      else expect(item).not.toHaveProperty('obdOdometerMeters');
    }
    expect(fleet.vehicles.filter((v) => !hasObdOdometer(v.index))).toHaveLength(2);
  });
});

describe('Samsara simulator: vehicles, cursor expiry, rate limits', () => {
  it('lists vehicles, paged by limit, the last page with an empty endCursor', async () => {
    const { sim, fleet } = await start({ vehicles: 5 });
    const ids: string[] = [];
    let url = `${sim.url}/fleet/vehicles?limit=2`;
    for (let pages = 0; pages < 10; pages += 1) {
      const page = await getJson(url);
      expect(page.status).toBe(200);
      for (const vehicle of page.body.data) {
        expect(vehicle).toMatchObject({ id: expect.any(String), name: expect.any(String), vin: expect.any(String), createdAtTime: expect.any(String) });
        ids.push(vehicle.id);
      }
      if (!page.body.pagination.hasNextPage) {
        expect(page.body.pagination.endCursor).toBe('');
        break;
      }
      url = `${sim.url}/fleet/vehicles?limit=2&after=${page.body.pagination.endCursor}`;
    }
    expect(ids).toEqual(fleet.vehicles.map((v) => v.samsaraId));
    expect((await getJson(`${sim.url}/fleet/vehicles`)).body.data).toHaveLength(5);
    for (const limit of ['0', '513', 'ten']) expect((await getJson(`${sim.url}/fleet/vehicles?limit=${limit}`)).status, limit).toBe(400);
    expect((await getJson(`${sim.url}/fleet/vehicles`, {})).status).toBe(401);
  });

  it('refuses a cursor past its lifetime with 400, feed and history alike, and a fresh start works', async () => {
    const { sim, advance } = await start({ vehicles: 2, cursorLifetimeMs: 60_000, pageSize: 5 });
    const first = await feed(sim.url, 'types=gps');
    const history = await getJson(`${sim.url}/fleet/vehicles/stats/history?types=gps&startTime=2026-11-28T11:00:00Z&endTime=2026-11-28T12:00:00Z`);
    expect(history.body.pagination.hasNextPage).toBe(true);
    advance(30_000);
    expect((await feed(sim.url, `types=gps&after=${first.body.pagination.endCursor}`)).status).toBe(200);
    advance(31_000);
    const expired = await feed(sim.url, `types=gps&after=${first.body.pagination.endCursor}`);
    expect(expired.status).toBe(400);
    expect(expired.body).toEqual({ message: expect.stringContaining('expired'), requestId: expect.any(String) });
    const historyExpired = await getJson(
      `${sim.url}/fleet/vehicles/stats/history?types=gps&startTime=2026-11-28T11:00:00Z&endTime=2026-11-28T12:00:00Z&after=${history.body.pagination.endCursor}`,
    );
    expect(historyExpired.status).toBe(400);
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
  });

  it('holds a token to Samsara’s 150 requests a second, with a fractional Retry-After', async () => {
    const { sim, advance } = await start({ vehicles: 2, rateLimitPerSecond: samsaraRateLimits.perTokenPerSecond });
    const burst = await Promise.all(Array.from({ length: 160 }, () => feed(sim.url, 'types=gps')));
    expect(burst.filter((a) => a.status === 200)).toHaveLength(150);
    const limited = burst.filter((a) => a.status === 429);
    expect(limited).toHaveLength(10);
    for (const answer of limited) {
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(answer.headers.get('retry-after'))).toBeLessThan(1);
    }
    advance(1000);
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
  });

  it('holds an organization to 200 a second across its tokens, and /fleet/vehicles to 25', async () => {
    const { sim } = await start({
      vehicles: 2,
      rateLimitPerSecond: samsaraRateLimits.perTokenPerSecond,
      rateLimits: { perOrganizationPerSecond: samsaraRateLimits.perOrganizationPerSecond, endpointsPerSecond: samsaraRateLimits.endpointsPerSecond },
      extraTokens: ['second-token-of-the-org'],
    });
    const vehicles = await Promise.all(Array.from({ length: 30 }, () => getJson(`${sim.url}/fleet/vehicles`)));
    expect(vehicles.filter((a) => a.status === 200)).toHaveLength(25);
    const asSecond = { authorization: 'Bearer second-token-of-the-org' };
    const both = await Promise.all([
      ...Array.from({ length: 150 }, () => feed(sim.url, 'types=gps')),
      ...Array.from({ length: 150 }, () => getJson(`${sim.url}/fleet/vehicles/stats/feed?types=gps`, asSecond)),
    ]);
    // 25 of the organization's 200 went to /fleet/vehicles above, and the first token had 150 - 25 left.
    expect(both.filter((a) => a.status === 200)).toHaveLength(175);
    expect(both.filter((a) => a.status === 429)).toHaveLength(125);
  });
});
