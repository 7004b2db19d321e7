/**
 * Retention: whole daily partitions go once every workspace's retention has passed them; rows of a workspace
 * with a shorter retention go from the partitions others still keep; the snapshot stays; old rejections and
 * poll runs go; runs from several callers at once are safe; ingest goes on meanwhile. Each case runs on a frozen
 * clock at both ends of a UTC day and at noon, so the outcome never depends on when the suite runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayStart, ensureHistoryPartitions, listHistoryPartitions, partitionName } from '../../src/core/db/history-partitions.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { runRetention } from '../../src/core/maintenance/retention.ts';
import { backend, createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { randomBytes } from 'node:crypto';

const key = randomBytes(32);
const dayMs = 86_400_000;

const clocks = [
  ['just after midnight UTC', Date.parse('2026-11-28T00:00:30.000Z')],
  ['at noon UTC', Date.parse('2026-11-28T12:00:00.000Z')],
  ['just before midnight UTC', Date.parse('2026-11-28T23:59:30.000Z')],
] as const;

describe.each(clocks)('retention %s', (_when, now) => {
  let database: TestDatabase;
  const noon = (daysAgo: number) => dayStart(now - daysAgo * dayMs) + 12 * 3600_000;
  /** Whole UTC days between an instant and the frozen clock's day. */
  const daysAgo = (ms: number) => (dayStart(now) - dayStart(ms)) / dayMs;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  async function plant(fleet: TestFleet, days: readonly number[]): Promise<void> {
    const db = database.db;
    await ensureHistoryPartitions(db, days.map(noon));
    for (const d of days) {
      await db.query(
        `INSERT INTO signal_history (workspace_id, vehicle_id, signal, observed_at, value, source, provider, connection_id, received_at)
         VALUES ($1, $2, 'soc_pct', $3, $4::jsonb, 'poll', 'samsara', $5, now())`,
        [fleet.workspaceId, fleet.vehicles[0]!.id, new Date(noon(d)).toISOString(), JSON.stringify(50 + d), fleet.connectionId],
      );
      await db.query(
        `INSERT INTO ingest_rejections (workspace_id, reason, detail, update_body, rejected_at) VALUES ($1, 'unknown_signal', 'planted', '{}', $2)`,
        [fleet.workspaceId, new Date(noon(d)).toISOString()],
      );
    }
  }

  async function daysKept(fleet: TestFleet): Promise<number[]> {
    const { rows } = await database.db.query<{ observed_at: Date }>(
      `SELECT observed_at FROM signal_history WHERE workspace_id = $1 AND signal = 'soc_pct' ORDER BY observed_at`,
      [fleet.workspaceId],
    );
    return rows.map((r) => daysAgo(r.observed_at.getTime()));
  }

  describe('retention', () => {
    it('drops whole partitions every workspace has outlived, deletes rows where only some have, and keeps the snapshot', async () => {
      const short = await createFleet(database.db, key, { name: 'Short memory', policy: { retentionDays: 7 } });
      const long = await createFleet(database.db, key, { name: 'Long memory', policy: { retentionDays: 30 } });
      const days = [45, 40, 20, 10, 3, 0];
      await plant(short, days);
      await plant(long, days);
      await ingestBatch(database.db, [update(short, [{ signal: 'soc_pct', value: 77, observedAt: now - 60_000 }])], { now });

      const report = await runRetention(database.db, now);
      expect(report.skipped).toBe(false);
      const partitions = await listHistoryPartitions(database.db);
      for (const d of [45, 40]) {
        expect(partitions).not.toContain(partitionName(noon(d)));
        expect(report.droppedPartitions).toContain(partitionName(noon(d)));
      }
      for (const d of [20, 10, 3, 0]) expect(partitions).toContain(partitionName(noon(d)));

      // The planted days 3 and 0, and the reading a minute before the clock (yesterday, just after midnight).
      expect(await daysKept(short)).toEqual([3, 0, daysAgo(now - 60_000)].sort((a, b) => b - a));
      expect(await daysKept(long)).toEqual([20, 10, 3, 0]);
      expect(report.deletedHistoryRows).toBe(2);
      const { rows: snapshot } = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signal_snapshot WHERE workspace_id = $1', [short.workspaceId]);
      expect(snapshot[0]!.n).toBe(1);
      const { rows: rejections } = await database.db.query<{ workspace_id: string; n: number }>(
        `SELECT workspace_id, count(*)::int AS n FROM ingest_rejections WHERE detail = 'planted' GROUP BY workspace_id`,
      );
      expect(Object.fromEntries(rejections.map((r) => [r.workspace_id, r.n]))).toEqual({ [short.workspaceId]: 2, [long.workspaceId]: 4 });

      // Ingest still finds (and makes again) the partitions it needs after the drops.
      const after = await ingestBatch(database.db, [update(long, [{ signal: 'soc_pct', value: 70, observedAt: noon(25) }])], { now });
      expect(after.results[0]!.readings[0]!.status).toBe('accepted');
      expect(await listHistoryPartitions(database.db)).toContain(partitionName(noon(25)));

      const again = await runRetention(database.db, now);
      expect(again).toMatchObject({ skipped: false, droppedPartitions: [], deletedHistoryRows: 0, deletedRejections: 0 });
    });

    it('is safe from several callers at once, and ingest goes on while it runs', async () => {
      const fleet = await createFleet(database.db, key, { name: 'Busy memory', policy: { retentionDays: 7 }, vehicles: 2 });
      await plant(fleet, [60, 50, 2]);
      const others = backend === 'postgres' ? await Promise.all([database.reopen(), database.reopen()]) : [];
      try {
        const handles = [database.db, ...others];
        const ingesting = Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            ingestBatch(database.db, [update(fleet, [{ signal: 'speed_kph', value: i, observedAt: now - (i + 1) * 1000 }], { vehicle: 1 })], { now }),
          ),
        );
        const reports = await Promise.all([...handles, ...handles].map((db) => runRetention(db, now)));
        const outcomes = await ingesting;
        expect(outcomes.every((o) => o.counts.accepted + o.counts.late === 1)).toBe(true);
        expect(reports.filter((r) => !r.skipped).length).toBeGreaterThanOrEqual(1);
        expect(reports.flatMap((r) => r.droppedPartitions).filter((p) => p === partitionName(noon(60)))).toHaveLength(1);
        expect(await daysKept(fleet)).toEqual([2]);
      } finally {
        await Promise.all(others.map((db) => db.close()));
      }
    });
  });
});
