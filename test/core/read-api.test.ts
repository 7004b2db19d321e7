/**
 * The read API: vehicles with their snapshot (paged by name), one vehicle's history (observed-time order, filters,
 * cursor pagination both ways) and rejections (newest first, since, reason, cursor).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type HttpAnswer, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';

let core: TestCore;
let fleet: TestFleet;
const t0 = Date.now() - 2 * 3600_000;

beforeAll(async () => {
  core = await startTestCore();
  fleet = await createFleet(core.db, core.secretKey, { vehicles: 7 });
  // Vehicle 0: 30 soc and 30 speed readings a minute apart; the others one reading each.
  await ingestBatch(core.db, [
    update(
      fleet,
      Array.from({ length: 30 }, (_, i) => [
        { signal: 'soc_pct', value: 90 - i, observedAt: t0 + i * 60_000 },
        { signal: 'speed_kph', value: i, observedAt: t0 + i * 60_000 },
      ]).flat(),
    ),
    ...fleet.vehicles.slice(1).map((_, i) => update(fleet, [{ signal: 'soc_pct', value: 50 + i, observedAt: t0 }], { vehicle: i + 1 })),
  ]);
});
afterAll(async () => {
  await core.close();
});

const path = (suffix: string) => `/v1/workspaces/${fleet.workspaceId}${suffix}`;

describe('vehicles', () => {
  it('pages through vehicles by name with a cursor, each with its snapshot and devices', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const answer: HttpAnswer<any> = await core.http.admin('GET', path(`/vehicles?limit=3${cursor ? `&cursor=${cursor}` : ''}`));
      expect(answer.status).toBe(200);
      expect(answer.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...answer.body.items.map((v: { name: string }) => v.name));
      cursor = answer.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(7);

    const first = (await core.http.admin('GET', path('/vehicles?limit=1'))).body.items[0];
    expect(first.signals.soc_pct).toEqual({ value: 61, observedAt: new Date(t0 + 29 * 60_000).toISOString(), source: 'poll', provider: 'samsara' });
    expect(first.devices).toEqual([{ connectionId: fleet.connectionId, externalId: 'dev-0', provider: 'samsara' }]);
    expect(first.lastObservedAt).toBe(new Date(t0 + 29 * 60_000).toISOString());
  });

  it('filters by active and refuses a cursor it did not issue', async () => {
    await core.http.admin('PATCH', path(`/vehicles/${fleet.vehicles[6]!.id}`), { active: false });
    const active = await core.http.admin('GET', path('/vehicles?active=true&limit=100'));
    expect(active.body.items).toHaveLength(6);
    const inactive = await core.http.admin('GET', path('/vehicles?active=false'));
    expect(inactive.body.items.map((v: { id: string }) => v.id)).toEqual([fleet.vehicles[6]!.id]);
    const forged = await core.http.admin('GET', path(`/vehicles?cursor=${Buffer.from('["a","not-a-uuid"]').toString('base64url')}`));
    expect(forged).toMatchObject({ status: 400, body: { code: 'invalid_cursor' } });
    expect((await core.http.admin('GET', path('/vehicles?limit=0'))).status).toBe(400);
  });
});

describe('history', () => {
  const vehicle = () => fleet.vehicles[0]!.id;

  it('answers readings in observed-time order, one signal or all, with cursor pages', async () => {
    const all: { signal: string; observedAt: string }[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page += 1) {
      const answer: HttpAnswer<any> = await core.http.admin('GET', path(`/vehicles/${vehicle()}/history?limit=7${cursor ? `&cursor=${cursor}` : ''}`));
      all.push(...answer.body.items);
      cursor = answer.body.nextCursor;
      if (!cursor) break;
    }
    expect(all).toHaveLength(60);
    const keys = all.map((r) => `${r.observedAt}|${r.signal}`);
    expect(keys).toEqual([...keys].sort());
    expect(new Set(keys).size).toBe(60);

    const soc = await core.http.admin('GET', path(`/vehicles/${vehicle()}/history?signal=soc_pct&limit=1000`));
    expect(soc.body.items.map((r: { value: number }) => r.value)).toEqual(Array.from({ length: 30 }, (_, i) => 90 - i));
    expect(soc.body.items[0]).toMatchObject({ signal: 'soc_pct', source: 'poll', provider: 'samsara' });
    expect(soc.body.nextCursor).toBeNull();
  });

  it('takes a [from, to) range and descending order', async () => {
    const from = new Date(t0 + 10 * 60_000).toISOString();
    const to = new Date(t0 + 20 * 60_000).toISOString();
    const ranged = await core.http.admin('GET', path(`/vehicles/${vehicle()}/history?signal=speed_kph&from=${from}&to=${to}`));
    expect(ranged.body.items.map((r: { value: number }) => r.value)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const newestFirst = await core.http.admin('GET', path(`/vehicles/${vehicle()}/history?signal=speed_kph&order=desc&limit=4`));
    expect(newestFirst.body.items.map((r: { value: number }) => r.value)).toEqual([29, 28, 27, 26]);
    const next = await core.http.admin('GET', path(`/vehicles/${vehicle()}/history?signal=speed_kph&order=desc&limit=4&cursor=${newestFirst.body.nextCursor}`));
    expect(next.body.items.map((r: { value: number }) => r.value)).toEqual([25, 24, 23, 22]);
    expect((await core.http.admin('GET', path(`/vehicles/${vehicle()}/history?from=yesterday`))).status).toBe(400);
    expect((await core.http.admin('GET', path(`/vehicles/00000000-0000-4000-8000-000000000000/history`))).status).toBe(404);
  });
});

describe('rejections', () => {
  it('lists newest first, filters by reason and since, and pages', async () => {
    const before = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await ingestBatch(core.db, [
      ...Array.from({ length: 5 }, (_, i) => update(fleet, [{ signal: `bogus_${i}`, value: 1, observedAt: Date.now() - 1000 }])),
      update(fleet, [{ signal: 'soc_pct', value: 500, observedAt: Date.now() - 1000 }]),
    ]);
    const recent = await core.http.admin('GET', path(`/rejections?since=${before}&limit=4`));
    expect(recent.body.items).toHaveLength(4);
    const rest = await core.http.admin('GET', path(`/rejections?since=${before}&limit=4&cursor=${recent.body.nextCursor}`));
    expect(rest.body.items).toHaveLength(2);
    expect(rest.body.nextCursor).toBeNull();
    const ids = [...recent.body.items, ...rest.body.items].map((r: { id: number }) => r.id);
    expect(ids).toEqual([...ids].sort((x, y) => y - x));
    const invalid = await core.http.admin('GET', path('/rejections?reason=invalid_value'));
    expect(invalid.body.items.map((r: { signal: string }) => r.signal)).toEqual(['soc_pct']);
    expect((await core.http.admin('GET', path('/rejections?reason=because'))).status).toBe(400);
  });

  it('lets an admin see rejections of updates that named no workspace', async () => {
    await ingestBatch(core.db, [{ hello: 'world' }]);
    const all = await core.http.admin('GET', '/v1/rejections?reason=malformed');
    const unattributed = all.body.items.find((r: { update: unknown }) => JSON.stringify(r.update) === '{"hello":"world"}');
    expect(unattributed).toMatchObject({ workspaceId: null, reason: 'malformed' });
  });
});
