/**
 * History partitions are made ahead by maintenance and never with an ACCESS EXCLUSIVE lock on `signal_history`:
 * while a long reader holds the history open, maintenance still adds the coming days and a backfill into a past
 * day still lands; ingest of today's readings makes no partition at all; a day beyond retention gets none.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayStart, ensureHistoryPartitions, listHistoryPartitions, partitionDaysAhead, partitionName } from '../../src/core/db/history-partitions.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { runRetention } from '../../src/core/maintenance/retention.ts';
import { backend, createTestDatabase, postgresUrl, type TestDatabase } from '../support/database.ts';
import { createFleet, historyOf, update, type TestFleet } from '../support/fleet.ts';

const dayMs = 86_400_000;
const key = randomBytes(32);
let database: TestDatabase;
let fleet: TestFleet;

beforeAll(async () => {
  database = await createTestDatabase();
  fleet = await createFleet(database.db, key, { vehicles: 2, policy: { retentionDays: 30 } });
});
afterAll(async () => {
  await database.drop();
});

/** Resolves with the work's value, or rejects if it takes longer than `ms` (it would be waiting on a lock). */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms: it waits on a lock`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('history partitions', () => {
  it('are made by maintenance for yesterday to a week ahead, so ingest of today makes none', async () => {
    const now = Date.now();
    await runRetention(database.db, now);
    const names = await listHistoryPartitions(database.db);
    for (let d = -1; d <= partitionDaysAhead; d += 1) expect(names).toContain(partitionName(dayStart(now) + d * dayMs));
    const answer = await ingestBatch(database.db, [update(fleet, [{ signal: 'soc_pct', value: 55, observedAt: now - 1000 }])], { now });
    expect(answer.counts.accepted).toBe(1);
    expect(await listHistoryPartitions(database.db)).toEqual(names);
  });

  it('takes a backfill into a past day within retention, and makes no partition for a day beyond it', async () => {
    const now = Date.now();
    const past = dayStart(now) - 20 * dayMs + 3600_000;
    const beyond = dayStart(now) - 40 * dayMs + 3600_000;
    const answer = await ingestBatch(
      database.db,
      [update(fleet, [{ signal: 'odometer_km', value: 1000, observedAt: past }, { signal: 'odometer_km', value: 900, observedAt: beyond }], { vehicle: 1 })],
      { now },
    );
    expect(answer.results[0]!.readings.map((r) => r.reason ?? r.status)).toEqual(['accepted', 'too_old']);
    const names = await listHistoryPartitions(database.db);
    expect(names).toContain(partitionName(dayStart(past)));
    expect(names).not.toContain(partitionName(dayStart(beyond)));
    expect(await historyOf(database.db, fleet.vehicles[1]!.id, 'odometer_km')).toEqual([{ signal: 'odometer_km', value: 1000, observedAt: new Date(past).toISOString() }]);
  });

  it.runIf(backend === 'postgres')('adds partitions and takes a backfill while a long reader holds the history open', async () => {
    const reader = new pg.Client({ connectionString: postgresUrl, options: `-c search_path=${database.schema}` });
    await reader.connect();
    try {
      // A report over the whole history, left open: it holds ACCESS SHARE on signal_history and every partition.
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM signal_history');
      const now = Date.now();
      const far = dayStart(now) + (partitionDaysAhead + 3) * dayMs;
      await within(5000, 'adding a partition ahead', ensureHistoryPartitions(database.db, [far]));
      expect(await listHistoryPartitions(database.db)).toContain(partitionName(far));

      const past = dayStart(now) - 12 * dayMs + 7200_000;
      const [backfill, live] = await within(
        5000,
        'ingest beside the reader',
        Promise.all([
          ingestBatch(database.db, [update(fleet, [{ signal: 'soc_pct', value: 40, observedAt: past }])], { now }),
          ingestBatch(database.db, [update(fleet, [{ signal: 'soc_pct', value: 41, observedAt: now - 500 }], { vehicle: 1 })], { now }),
        ]),
      );
      expect(backfill.counts).toMatchObject({ accepted: 0, late: 1 });
      expect(live.counts.accepted).toBe(1);
      expect(await listHistoryPartitions(database.db)).toContain(partitionName(dayStart(past)));
      await reader.query('COMMIT');
    } finally {
      await reader.end();
    }
  });
});
