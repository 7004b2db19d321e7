/**
 * Ordering and concurrency: out-of-order batches, and concurrent batches for the same vehicles, never regress a
 * snapshot, never lose or duplicate a reading, never deadlock.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createFleet, historyOf, snapshotOf, update } from '../support/fleet.ts';
import { checkStoreInvariants } from '../support/store-invariants.ts';

let database: TestDatabase;
const key = randomBytes(32);
const base = Date.now() - 3600_000;

beforeAll(async () => {
  database = await createTestDatabase({ poolSize: 8 });
});
afterAll(async () => {
  await database.drop();
});

/** The store's invariant: each snapshot row is the newest history row of its vehicle and signal. */
async function expectSnapshotIsNewestHistory(): Promise<void> {
  expect((await checkStoreInvariants(database.db)).snapshotNotNewest).toEqual([]);
}

describe('ordering', () => {
  it('keeps the newest value when batches arrive newest first', async () => {
    const f = await createFleet(database.db, key);
    const v = f.vehicles[0]!.id;
    const newer = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 60, observedAt: base + 60_000 }, { signal: 'location', value: { lat: 1, lon: 1 }, observedAt: base + 60_000 }])]);
    const older = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 70, observedAt: base }, { signal: 'location', value: { lat: 0, lon: 0 }, observedAt: base + 120_000 }])]);
    expect(newer.results[0]!.readings.map((r) => r.status)).toEqual(['accepted', 'accepted']);
    // Per signal: soc from the older batch is late, but its location is newer than the snapshot's.
    expect(older.results[0]!.readings.map((r) => r.status)).toEqual(['late', 'accepted']);
    const snapshot = await snapshotOf(database.db, v);
    expect(snapshot.soc_pct!.value).toBe(60);
    expect(snapshot.location!.value).toEqual({ lat: 0, lon: 0 });
    expect(await historyOf(database.db, v, 'soc_pct')).toHaveLength(2);
    await expectSnapshotIsNewestHistory();
  });
});

describe('concurrency', () => {
  it('leaves the snapshot at the newest value when many batches for one vehicle race', async () => {
    const f = await createFleet(database.db, key, { vehicles: 1 });
    const v = f.vehicles[0]!.id;
    // 24 batches, each with 5 readings at times spread so batches interleave in observed time.
    const batches = Array.from({ length: 24 }, (_, b) =>
      [update(f, Array.from({ length: 5 }, (_, i) => ({ signal: 'soc_pct', value: (b * 5 + i) % 100, observedAt: base + (i * 24 + b) * 1000 })))],
    );
    const shuffled = batches.map((batch, i) => ({ batch, sortKey: (i * 7919) % 24 })).sort((a, b) => a.sortKey - b.sortKey);
    const outcomes = await Promise.all(shuffled.map(({ batch }) => ingestBatch(database.db, batch)));
    const statuses = outcomes.flatMap((o) => o.results[0]!.readings.map((r) => r.status));
    expect(statuses.filter((s) => s === 'duplicate' || s === 'rejected')).toEqual([]);
    expect(statuses).toHaveLength(120);
    const history = await historyOf(database.db, v, 'soc_pct');
    expect(history).toHaveLength(120);
    const newestMs = base + (4 * 24 + 23) * 1000;
    expect((await snapshotOf(database.db, v)).soc_pct).toEqual({ value: (23 * 5 + 4) % 100, observedAt: new Date(newestMs).toISOString() });
    await expectSnapshotIsNewestHistory();
  });

  it('judges racing batches against each other as if they ran one after the other (the counter rule holds)', async () => {
    // For each vehicle, two batches race: A says 1000 km at t2, B says 500 km at t3 > t2. Whichever commits
    // second contradicts the first, so exactly one of them must be rejected implausible_value.
    const f = await createFleet(database.db, key, { vehicles: 8 });
    await ingestBatch(
      database.db,
      f.vehicles.map((_, i) => update(f, [{ signal: 'odometer_km', value: 400, observedAt: base }], { vehicle: i })),
    );
    const races = f.vehicles.flatMap((_, i) => [
      ingestBatch(database.db, [update(f, [{ signal: 'odometer_km', value: 1000, observedAt: base + 2000 }], { vehicle: i })]),
      ingestBatch(database.db, [update(f, [{ signal: 'odometer_km', value: 500, observedAt: base + 3000 }], { vehicle: i })]),
    ]);
    const outcomes = await Promise.all(races);
    for (let i = 0; i < f.vehicles.length; i += 1) {
      const pair = [outcomes[2 * i]!, outcomes[2 * i + 1]!].map((o) => o.results[0]!.readings[0]!.reason ?? o.results[0]!.readings[0]!.status);
      expect(pair.filter((s) => s === 'implausible_value'), `vehicle ${i}: ${pair.join(', ')}`).toHaveLength(1);
    }
    await expectSnapshotIsNewestHistory();
  });

  it('does not deadlock when concurrent batches touch the same vehicles in opposite orders, and each reading lands once', async () => {
    const f = await createFleet(database.db, key, { vehicles: 6 });
    const forward = f.vehicles.map((_, i) => i);
    const backward = [...forward].reverse();
    const batch = (order: number[], offset: number) =>
      order.map((i) => update(f, [{ signal: 'odometer_km', value: 100 + offset, observedAt: base + offset * 1000 }], { vehicle: i }));
    const runs = await Promise.all(
      Array.from({ length: 12 }, (_, k) => ingestBatch(database.db, batch(k % 2 === 0 ? forward : backward, k % 4))),
    );
    const counts = runs.reduce(
      (sum, o) => ({ accepted: sum.accepted + o.counts.accepted, late: sum.late + o.counts.late, duplicate: sum.duplicate + o.counts.duplicate }),
      { accepted: 0, late: 0, duplicate: 0 },
    );
    // 4 distinct observed times per vehicle: each stored once, every repeat a duplicate.
    expect(counts.accepted + counts.late).toBe(6 * 4);
    expect(counts.duplicate).toBe(12 * 6 - 6 * 4);
    for (const vehicle of f.vehicles) {
      expect(await historyOf(database.db, vehicle.id, 'odometer_km')).toHaveLength(4);
      expect((await snapshotOf(database.db, vehicle.id)).odometer_km!.value).toBe(103);
    }
    await expectSnapshotIsNewestHistory();
  });
});
