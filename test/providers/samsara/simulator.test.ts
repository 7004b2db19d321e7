/**
 * The Samsara simulator over real HTTP on 127.0.0.1: the wire rules it must keep (auth, `types`, cursors and
 * paging, the snapshot quirk, units, 429s) and the faults it injects. Raw fetch, no adapter: this is the contract
 * the adapter is tested against.
 */
import { describe, expect, it } from 'vitest';
import type { FleetModel, Sample } from '../../../src/sim/fleet-model.ts';
import { getJson, token, useClockedSimulator } from './support.ts';

const start = useClockedSimulator();

const feed = (url: string, params: string) => getJson(`${url}/fleet/vehicles/stats/feed?${params}`);

/** The model's newest sample of a signal per vehicle (what a first feed call must serve). */
function latestBySamsaraId(fleet: FleetModel, signal: Sample['signal']): Map<string, Sample> {
  return new Map(fleet.latest().filter((s) => s.signal === signal).map((s) => [fleet.vehicles[s.vehicle]!.samsaraId, s]));
}

describe('Samsara simulator: requests', () => {
  it('answers 401 with {message, requestId} without a token or with a wrong one', async () => {
    const { sim } = await start();
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token' }, { authorization: token }];
    for (const headers of attempts) {
      const answer = await getJson(`${sim.url}/fleet/vehicles/stats/feed?types=gps`, headers);
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
    }
    expect(sim.groundTruth.all()).toHaveLength(0);
  });

  it('requires types, at most three of them, all known', async () => {
    const { sim } = await start();
    for (const params of ['', 'types=', 'types=gps,engineStates,evChargingStatus,obdOdometerMeters', 'types=gps,fuelPercent', 'types=gps,GPS']) {
      const answer = await feed(sim.url, params);
      expect(answer.status, params).toBe(400);
      expect(answer.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
    }
    expect((await feed(sim.url, 'types=gps,engineStates,evChargingStatus')).status).toBe(200);
    // A type Samsara has but the fleet does not simulate is accepted and comes back without data.
    const unmodelled = await feed(sim.url, 'types=evBatteryVoltageMilliVolt');
    expect(unmodelled.status).toBe(200);
    expect(unmodelled.body.data).toEqual([]);
  });

  it('answers 404 with {message, requestId} on an unknown path', async () => {
    const { sim } = await start();
    const answer = await getJson(`${sim.url}/fleet/vehicles/nothing-here`);
    expect(answer.status).toBe(404);
    expect(answer.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
  });
});

describe('Samsara simulator: feed', () => {
  it('serves the latest values in Samsara units on the first call, with a cursor at the log end', async () => {
    const { sim, fleet } = await start({ vehicles: 4 });
    const answer = await feed(sim.url, 'types=gps,evStateOfChargeMilliPercent,evChargingStatus');
    expect(answer.status).toBe(200);
    expect(answer.body.pagination).toEqual({ endCursor: expect.stringMatching(/.+/), hasNextPage: false });
    expect(answer.body.data.map((item: { id: string }) => item.id)).toEqual(fleet.vehicles.map((v) => v.samsaraId));

    const soc = latestBySamsaraId(fleet, 'soc_pct');
    const location = latestBySamsaraId(fleet, 'location');
    for (const item of answer.body.data) {
      expect(item.gps).toHaveLength(1);
      expect(item.evStateOfChargeMilliPercent).toHaveLength(1);
      expect(item.evChargingStatus).toHaveLength(1);
      const socSample = soc.get(item.id)!;
      expect(item.evStateOfChargeMilliPercent[0]).toEqual({
        time: new Date(socSample.observedAtMs).toISOString().replace('.000Z', 'Z'),
        value: Math.round((socSample.value as number) * 1000),
      });
      expect(Number.isInteger(item.evStateOfChargeMilliPercent[0].value)).toBe(true);
      const position = location.get(item.id)!.value as { lat: number; lon: number };
      expect([item.gps[0].latitude, item.gps[0].longitude]).toEqual([position.lat, position.lon]);
      expect([0, 1, 2]).toContain(item.evChargingStatus[0].value);
    }
  });

  it('serves every change since the cursor, paged with hasNextPage, and nothing twice', async () => {
    const { sim, fleet, advance } = await start({ vehicles: 4, pageSize: 7 });
    const types = 'types=gps,evStateOfChargeMilliPercent,evChargingStatus';
    // The latest values first (they take two pages of 7 here), with the clock still.
    let first = await feed(sim.url, types);
    for (let i = 0; i < 10 && first.body.pagination.hasNextPage; i += 1) {
      first = await feed(sim.url, `${types}&after=${first.body.pagination.endCursor}`);
    }
    expect(first.body.pagination.hasNextPage).toBe(false);
    const fromSeq = fleet.endSeq;
    advance(180_000);

    let cursor: string = first.body.pagination.endCursor;
    const served: string[] = [];
    let pages = 0;
    for (; pages < 500; pages += 1) {
      const page = await feed(sim.url, `${types}&after=${cursor}`);
      expect(page.status).toBe(200);
      for (const item of page.body.data) {
        for (const p of item.gps ?? []) served.push(`${item.id}|gps|${p.time}|${p.latitude},${p.longitude}`);
        for (const e of item.evStateOfChargeMilliPercent ?? []) served.push(`${item.id}|soc|${e.time}|${e.value}`);
        for (const e of item.evChargingStatus ?? []) served.push(`${item.id}|charging|${e.time}|${e.value}`);
      }
      cursor = page.body.pagination.endCursor;
      if (!page.body.pagination.hasNextPage) break;
    }
    expect(pages).toBeGreaterThan(10);
    const time = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
    const expected = fleet.samplesFrom(fromSeq).flatMap((s) => {
      const id = fleet.vehicles[s.vehicle]!.samsaraId;
      if (s.signal === 'location') return [`${id}|gps|${time(s.observedAtMs)}|${s.value.lat},${s.value.lon}`];
      if (s.signal === 'soc_pct') return [`${id}|soc|${time(s.observedAtMs)}|${Math.round(s.value * 1000)}`];
      if (s.signal === 'charging_state') return [`${id}|charging|${time(s.observedAtMs)}|${s.value === 'charging' ? 2 : 1}`];
      return [];
    });
    expect(expected.length).toBeGreaterThan(30);
    expect(new Set(served).size).toBe(served.length);
    expect([...served].sort()).toEqual([...expected].sort());

    // At the log end with the clock still, the next call is empty and keeps its position.
    const after = await feed(sim.url, `${types}&after=${cursor}`);
    expect(after.body).toEqual({ data: [], pagination: { endCursor: cursor, hasNextPage: false } });
  });

  it('pages the first call too when the latest values do not fit one page', async () => {
    const { sim } = await start({ vehicles: 6, pageSize: 4 });
    let answer = await feed(sim.url, 'types=gps,engineStates');
    const entries: string[] = [];
    let pages = 1;
    for (; pages < 20; pages += 1) {
      for (const item of answer.body.data) {
        for (const entry of [...(item.gps ?? []), ...(item.engineStates ?? [])]) entries.push(`${item.id}|${JSON.stringify(entry)}`);
      }
      if (!answer.body.pagination.hasNextPage) break;
      answer = await feed(sim.url, `types=gps,engineStates&after=${answer.body.pagination.endCursor}`);
    }
    // 6 vehicles x 2 types, 4 latest values a page.
    expect(pages).toBe(3);
    expect(entries).toHaveLength(12);
    expect(new Set(entries).size).toBe(12);
  });

  it('rejects a cursor it did not issue, or one issued by another endpoint', async () => {
    const { sim } = await start();
    expect((await feed(sim.url, 'types=gps&after=not-a-cursor')).status).toBe(400);
    const history = await getJson(
      `${sim.url}/fleet/vehicles/stats/history?types=gps&startTime=2026-11-28T11:00:00Z&endTime=2026-11-28T12:00:00Z`,
    );
    const answer = await feed(sim.url, `types=gps&after=${history.body.pagination.endCursor}`);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
  });

  it('filters by vehicleIds', async () => {
    const { sim, fleet } = await start({ vehicles: 5 });
    const wanted = [fleet.vehicles[1]!.samsaraId, fleet.vehicles[3]!.samsaraId];
    const answer = await feed(sim.url, `types=gps,obdOdometerMeters&vehicleIds=${wanted.join(',')}`);
    expect(answer.body.data.map((item: { id: string }) => item.id)).toEqual(wanted);
    expect(new Set(sim.groundTruth.all().map((r) => r.externalDeviceId))).toEqual(new Set(wanted));
  });

  it('records every reading it serves in canonical terms, and only signals Samsara has', async () => {
    const { sim, fleet } = await start({ vehicles: 4 });
    const types = ['gps,evStateOfChargeMilliPercent,evChargingStatus', 'obdOdometerMeters,engineStates,evAverageBatteryTemperatureMilliCelsius'];
    const bodies = [];
    for (const t of types) bodies.push((await feed(sim.url, `types=${t}`)).body);
    const truth = sim.groundTruth.all(token);
    expect(new Set(truth.map((r) => r.signal))).toEqual(
      new Set(['location', 'heading_deg', 'speed_kph', 'soc_pct', 'charging_state', 'odometer_km', 'ignition', 'battery_temp_c']),
    );
    const odometer = latestBySamsaraId(fleet, 'odometer_km');
    for (const item of bodies[1]!.data) {
      // One vehicle in four has no OBD coverage: Samsara omits the type for it (hasObdOdometer).
      if (!item.obdOdometerMeters) continue;
      const metres = item.obdOdometerMeters[0].value;
      expect(metres).toBe(Math.round((odometer.get(item.id)!.value as number) * 1000));
      const recorded = truth.find((r) => r.externalDeviceId === item.id && r.signal === 'odometer_km')!;
      expect(recorded).toMatchObject({ value: metres / 1000, observedAtMs: Date.parse(item.obdOdometerMeters[0].time) });
      const temperature = truth.find((r) => r.externalDeviceId === item.id && r.signal === 'battery_temp_c')!;
      expect(temperature.value).toBe(item.evAverageBatteryTemperatureMilliCelsius[0].value / 1000);
      expect(['On', 'Off', 'Idle']).toContain(item.engineStates[0].value);
    }
    // Moving vehicles' points carry speed and heading with the position.
    expect(bodies[0]!.data.some((item: { gps: { speedMilesPerHour?: number; headingDegrees?: number }[] }) => item.gps[0]!.speedMilesPerHour! > 0)).toBe(true);
    for (const item of bodies[0]!.data) {
      const point = item.gps[0];
      const speed = truth.find((r) => r.externalDeviceId === item.id && r.signal === 'speed_kph');
      if (point.speedMilesPerHour !== undefined) {
        // mph on the wire; the simulator's own way back to km/h.
        expect(speed!.value).toBeCloseTo(point.speedMilesPerHour * 1.609344, 2);
      }
    }
  });
});

describe('Samsara simulator: snapshot and history', () => {
  it('serves the snapshot with one object per stat and the singular engineState key', async () => {
    const { sim, fleet } = await start({ vehicles: 3 });
    const answer = await getJson(`${sim.url}/fleet/vehicles/stats?types=gps,engineStates,evStateOfChargeMilliPercent`);
    expect(answer.status).toBe(200);
    expect(answer.body.pagination).toEqual({ endCursor: '', hasNextPage: false });
    expect(answer.body.data).toHaveLength(3);
    const ignition = latestBySamsaraId(fleet, 'ignition');
    for (const item of answer.body.data) {
      expect(item).not.toHaveProperty('engineStates');
      expect(item.engineState).toEqual({ time: expect.any(String), value: ignition.get(item.id)!.value ? 'On' : 'Off' });
      expect(Array.isArray(item.gps)).toBe(false);
      expect(item.gps).toMatchObject({ latitude: expect.any(Number), longitude: expect.any(Number) });
      expect(item.evStateOfChargeMilliPercent).toEqual({ time: expect.any(String), value: expect.any(Number) });
    }
  });

  it('requires startTime and endTime on history and serves only what was observed between them', async () => {
    const { sim, advance } = await start({ vehicles: 3, pageSize: 50 });
    advance(300_000);
    const base = `${sim.url}/fleet/vehicles/stats/history?types=evStateOfChargeMilliPercent`;
    expect((await getJson(base)).status).toBe(400);
    expect((await getJson(`${base}&startTime=2026-11-28T12:00:00Z`)).status).toBe(400);
    expect((await getJson(`${base}&startTime=yesterday&endTime=2026-11-28T12:05:00Z`)).status).toBe(400);
    expect((await getJson(`${base}&startTime=2026-11-28T12:05:00Z&endTime=2026-11-28T12:00:00Z`)).status).toBe(400);

    const from = Date.parse('2026-11-28T12:01:00Z');
    const to = Date.parse('2026-11-28T12:03:00Z');
    let url = `${base}&startTime=2026-11-28T13:01:00%2B01:00&endTime=2026-11-28T12:03:00.000Z`;
    const times: number[] = [];
    for (let pages = 0; pages < 100; pages += 1) {
      const page = await getJson(url);
      expect(page.status).toBe(200);
      for (const item of page.body.data) for (const entry of item.evStateOfChargeMilliPercent) times.push(Date.parse(entry.time));
      if (!page.body.pagination.hasNextPage) break;
      url = `${base}&startTime=2026-11-28T13:01:00%2B01:00&endTime=2026-11-28T12:03:00.000Z&after=${page.body.pagination.endCursor}`;
    }
    expect(times.length).toBeGreaterThan(0);
    for (const t of times) expect(t >= from && t <= to).toBe(true);
  });
});

describe('Samsara simulator: rate limits and faults', () => {
  it('answers 429 with a fractional Retry-After once a token spends its per-second budget', async () => {
    const { sim, advance } = await start({ rateLimitPerSecond: 2 });
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
    const limited = await feed(sim.url, 'types=gps');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('0.5');
    expect(limited.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
    // The bucket refills continuously: 200 ms later 0.4 of a request is back, and the wait shrinks to match.
    advance(200);
    expect((await feed(sim.url, 'types=gps')).headers.get('retry-after')).toBe('0.3');
    advance(310);
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
  });

  it('injects 429, 500 and 401 as Samsara answers them', async () => {
    const { sim } = await start();
    sim.faults.queue('rate_limit');
    sim.faults.queue('server_error');
    sim.faults.queue('auth');
    const limited = await feed(sim.url, 'types=gps');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^0\.\d+$/);
    const failed = await feed(sim.url, 'types=gps');
    expect(failed.status).toBe(500);
    expect(failed.body).toEqual({ message: expect.any(String), requestId: expect.any(String) });
    expect((await feed(sim.url, 'types=gps')).status).toBe(401);
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
    expect(sim.faults.injected).toMatchObject({ rate_limit: 1, server_error: 1, auth: 1 });
  });

  it('injects a 200 whose body is not JSON, and one cut off mid-way, recording neither', async () => {
    const { sim } = await start();
    sim.faults.queue('malformed');
    const malformed = await fetch(`${sim.url}/fleet/vehicles/stats/feed?types=gps`, { headers: { authorization: `Bearer ${token}` } });
    expect(malformed.status).toBe(200);
    const text = await malformed.text();
    expect(() => JSON.parse(text)).toThrow();

    sim.faults.queue('truncated');
    const truncated = await fetch(`${sim.url}/fleet/vehicles/stats/feed?types=gps`, { headers: { authorization: `Bearer ${token}` } });
    expect(truncated.status).toBe(200);
    await expect(truncated.text()).rejects.toThrow();
    expect(sim.groundTruth.all()).toHaveLength(0);
  });

  it('holds a timed-out request for timeoutMs, then drops the connection', async () => {
    const { sim } = await start({ timeoutMs: 150 });
    sim.faults.queue('timeout');
    const started = Date.now();
    await expect(fetch(`${sim.url}/fleet/vehicles/stats/feed?types=gps`, { headers: { authorization: `Bearer ${token}` } })).rejects.toThrow();
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(5_000);
    expect((await feed(sim.url, 'types=gps')).status).toBe(200);
    expect(sim.served.requests).toBe(2);
  });

  it('stops promptly while a request is held', async () => {
    const { sim } = await start({ timeoutMs: 60_000 });
    sim.faults.queue('timeout');
    const pending = fetch(`${sim.url}/fleet/vehicles/stats/feed?types=gps`, { headers: { authorization: `Bearer ${token}` } }).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await sim.stop();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await pending).toBeInstanceOf(Error);
  });
});
