/**
 * The downsampled history (`GET .../history?bucket=`): buckets aligned to the Unix epoch whatever the time zone,
 * per signal count, first and last observed time, min / max / mean of numbers and the last value of anything; the
 * same order (`asc` by default, `desc` on request) and cursor pages as the raw history; the range bounded in buckets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type HttpAnswer, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';

let core: TestCore;
let fleet: TestFleet;
const hourMs = 3600_000;
// Two whole hours, starting on an hour of the epoch, ending at least an hour ago.
const base = Math.floor((Date.now() - 4 * hourMs) / hourMs) * hourMs;
const minute = (m: number) => base + m * 60_000;
const socAt = (m: number) => 90 - m * 0.25;
const chargingAt: [number, string][] = [
  [0, 'charging'],
  [7, 'not_charging'],
  [14, 'charging'],
  [70, 'complete'],
];

beforeAll(async () => {
  core = await startTestCore();
  fleet = await createFleet(core.db, core.secretKey, { vehicles: 2 });
  await ingestBatch(core.db, [
    update(fleet, [
      ...Array.from({ length: 120 }, (_, m) => ({ signal: 'soc_pct', value: socAt(m), observedAt: minute(m) })),
      ...chargingAt.map(([m, value]) => ({ signal: 'charging_state', value, observedAt: minute(m) })),
      { signal: 'location', value: { lat: 52.5, lon: 13.4 }, observedAt: minute(30) },
      { signal: 'location', value: { lat: 52.6, lon: 13.5 }, observedAt: minute(31) },
    ]),
  ]);
});
afterAll(async () => {
  await core.close();
});

const iso = (ms: number) => new Date(ms).toISOString();
const history = (query: string, vehicle = 0): Promise<HttpAnswer<any>> =>
  core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles/${fleet.vehicles[vehicle]!.id}/history?${query}`);

describe('bucketed history', () => {
  it('answers one item per 15 min bucket with count, span, min, max, mean and last, oldest first by default', async () => {
    const answer = await history(`signal=soc_pct&bucket=15m&from=${iso(base)}&to=${iso(minute(120))}`);
    expect(answer.status).toBe(200);
    expect(answer.body.nextCursor).toBeNull();
    expect(answer.body.items).toHaveLength(8);
    answer.body.items.forEach((item: any, b: number) => {
      const minutes = Array.from({ length: 15 }, (_, i) => b * 15 + i);
      expect(item).toEqual({
        signal: 'soc_pct',
        bucketStart: iso(minute(b * 15)),
        bucketEnd: iso(minute(b * 15 + 15)),
        count: 15,
        firstObservedAt: iso(minute(b * 15)),
        lastObservedAt: iso(minute(b * 15 + 14)),
        min: socAt(b * 15 + 14),
        max: socAt(b * 15),
        avg: expect.closeTo(minutes.reduce((sum, m) => sum + socAt(m), 0) / 15, 9),
        last: socAt(b * 15 + 14),
      });
    });
  });

  it('answers newest first with order=desc, and pages either way with the same items', async () => {
    const range = `from=${iso(base)}&to=${iso(minute(120))}`;
    const ascending = (await history(`bucket=1h&${range}&limit=100`)).body.items;
    // Keyed (bucket start, signal); a signal has a bucket only where it has readings (location: the first hour).
    expect(ascending.map((i: any) => `${i.bucketStart}|${i.signal}`)).toEqual([
      `${iso(base)}|charging_state`,
      `${iso(base)}|location`,
      `${iso(base)}|soc_pct`,
      `${iso(base + hourMs)}|charging_state`,
      `${iso(base + hourMs)}|soc_pct`,
    ]);
    const descending = (await history(`bucket=1h&${range}&order=desc&limit=100`)).body.items;
    expect(descending).toEqual([...ascending].reverse());

    for (const order of ['asc', 'desc']) {
      const paged: unknown[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page += 1) {
        const answer: HttpAnswer<any> = await history(`bucket=1h&${range}&order=${order}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(answer.body.items.length).toBeLessThanOrEqual(2);
        paged.push(...answer.body.items);
        cursor = answer.body.nextCursor;
        if (!cursor) break;
      }
      expect(paged).toEqual(order === 'asc' ? ascending : descending);
    }
  });

  it('gives the last value of signals that are not numbers, with no min, max or mean', async () => {
    const answer = await history(`bucket=1h&from=${iso(base)}&to=${iso(minute(120))}&order=desc`);
    const bySignal = (signal: string) => answer.body.items.filter((i: any) => i.signal === signal);
    expect(bySignal('charging_state').map((i: any) => [i.count, i.last, i.min, i.max, i.avg])).toEqual([
      [1, 'complete', null, null, null],
      [3, 'charging', null, null, null],
    ]);
    expect(bySignal('location')).toEqual([expect.objectContaining({ count: 2, last: { lat: 52.6, lon: 13.5 }, firstObservedAt: iso(minute(30)), lastObservedAt: iso(minute(31)), avg: null })]);
  });

  it('aligns buckets to the epoch, counts only readings within [from, to) and defaults to to now', async () => {
    const answer = await history(`signal=soc_pct&bucket=15m&from=${iso(minute(7))}`);
    expect(answer.status).toBe(200);
    const [first] = answer.body.items;
    expect(first).toMatchObject({ bucketStart: iso(base), count: 8, firstObservedAt: iso(minute(7)), max: socAt(7) });
    // Up to now: every reading from minute 7 on.
    expect(answer.body.items.reduce((sum: number, i: any) => sum + i.count, 0)).toBe(113);
    const oneVehicleOnly = await history(`signal=soc_pct&bucket=5m&from=${iso(base)}`, 1);
    expect(oneVehicleOnly.body.items).toEqual([]);
  });

  it('refuses an unknown bucket, a missing or empty range and more buckets than a chart draws', async () => {
    expect(await history(`bucket=10m&from=${iso(base)}`)).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    expect(await history('bucket=5m')).toMatchObject({ status: 400, body: { code: 'history_range_required' } });
    expect(await history(`bucket=5m&from=${iso(base)}&to=${iso(base)}`)).toMatchObject({ status: 400, body: { code: 'invalid_range' } });
    const now = Date.now();
    // A week at 5 min is 2,016 buckets: the most one answer holds.
    expect((await history(`bucket=5m&from=${iso(now - 7 * 86_400_000)}&to=${iso(now)}`)).status).toBe(200);
    expect(await history(`bucket=5m&from=${iso(now - 7 * 86_400_000 - 300_000)}&to=${iso(now)}`)).toMatchObject({ status: 400, body: { code: 'too_many_buckets' } });
    expect((await history(`bucket=1h&from=${iso(now - 30 * 86_400_000)}&to=${iso(now)}`)).status).toBe(200);
    expect(await history(`bucket=1h&from=${iso(base)}&cursor=bm90LWEtY3Vyc29y`)).toMatchObject({ status: 400, body: { code: 'invalid_cursor' } });
    const unknown = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles/00000000-0000-4000-8000-000000000000/history?bucket=1h&from=${iso(base)}`);
    expect(unknown.status).toBe(404);
  });

  it('is published in the API description with its bucket widths', async () => {
    const doc = await core.http.admin('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    const parameters = doc.body.paths['/v1/workspaces/{ws}/vehicles/{vehicleId}/history'].get.parameters as { name: string; schema: { enum?: string[] } }[];
    expect(parameters.find((p) => p.name === 'bucket')?.schema.enum).toEqual(['5m', '15m', '1h']);
  });

  it('keeps the raw history as it was without a bucket', async () => {
    const raw = await history(`signal=soc_pct&from=${iso(base)}&limit=3&order=desc`);
    expect(raw.body.items.map((i: any) => i.value)).toEqual([socAt(119), socAt(118), socAt(117)]);
    expect(raw.body.items[0]).not.toHaveProperty('bucketStart');
  });
});
