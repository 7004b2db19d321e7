/**
 * Rejections folded by cause (migration 0016): one row per (reason, connection, device, signal) and hour with its
 * counts, first and last time and the latest example; rows from before kept readable as one rejection each; the
 * table's growth bounded by causes, not traffic (the acceptance: a day of a shared account's 50 unbound devices
 * polled every minute); and the health reason for a workspace that rejects more than a share of its readings.
 * The ingest handler is driven with an injected clock (`now`), so a day passes in seconds.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkspaceHealth } from '../../src/core/health/health-queries.ts';
import { rejectionShareLimit } from '../../src/core/health/onboarding-health.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { rejectionBucketMs } from '../../src/core/ingest/rejection-aggregation.ts';
import { listRejections } from '../../src/core/read/rejections.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';

let database: TestDatabase;
const key = randomBytes(32);
// Half a minute past an hour, so runs of minutes cross bucket boundaries where a test expects them.
const start = Date.parse('2026-11-28T00:00:30.000Z');
const minute = 60_000;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

interface StoredRow {
  reason: string;
  external_device_id: string | null;
  cause_device_id: string | null;
  signal: string | null;
  count: number;
  reading_count: number;
  first_rejected_at: Date;
  rejected_at: Date;
  bucket_start: Date;
  detail: string;
  update_body: { readings?: { value: unknown }[]; externalDeviceId?: string };
}

async function rowsOf(workspaceId: string): Promise<StoredRow[]> {
  const { rows } = await database.db.query<StoredRow>(
    `SELECT reason, external_device_id, cause_device_id, signal, count, reading_count, first_rejected_at, rejected_at, bucket_start, detail, update_body
       FROM ingest_rejections WHERE workspace_id = $1 ORDER BY bucket_start, reason, signal NULLS FIRST`,
    [workspaceId],
  );
  return rows;
}

/** A poll's three readings of a device, observed shortly before `now`. */
function pollOf(fleet: TestFleet, externalDeviceId: string, now: number, soc = 50) {
  return {
    ...update(
      fleet,
      [
        { signal: 'soc_pct', value: soc, observedAt: now - 5000 },
        { signal: 'odometer_km', value: 1000, observedAt: now - 5000 },
        { signal: 'location', value: { lat: 52.5, lon: 13.4 }, observedAt: now - 5000 },
      ],
      { externalDeviceId },
    ),
    receivedAt: new Date(now).toISOString(),
  };
}

describe('rejections folded by cause', () => {
  it('counts the same cause met many times in one batch, and in later batches of the hour, on one row with the latest example', async () => {
    const fleet = await createFleet(database.db, key, { vehicles: 1 });
    const bad = (value: number, now: number) => ({ ...update(fleet, [{ signal: 'soc_pct', value, observedAt: now - 1000 }]), receivedAt: new Date(now).toISOString() });
    const first = await ingestBatch(database.db, [bad(101, start), bad(102, start), bad(103, start)], { now: start });
    expect(first.counts.rejected).toBe(3);
    let rows = await rowsOf(fleet.workspaceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ reason: 'invalid_value', signal: 'soc_pct', cause_device_id: 'dev-0', count: 3, reading_count: 3 });
    expect(rows[0]!.update_body.readings![0]!.value).toBe(103);

    // Twenty minutes later, within the same hour: added to the row, which keeps its first time and takes the new example.
    const later = start + 20 * minute;
    await ingestBatch(database.db, [bad(150, later)], { now: later });
    rows = await rowsOf(fleet.workspaceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ count: 4, reading_count: 4 });
    expect(rows[0]!.first_rejected_at.toISOString()).toBe(new Date(start).toISOString());
    expect(rows[0]!.rejected_at.toISOString()).toBe(new Date(later).toISOString());
    expect(rows[0]!.update_body.readings![0]!.value).toBe(150);

    // The next hour is a row of its own; another signal is another cause.
    const nextHour = start + rejectionBucketMs;
    await ingestBatch(database.db, [bad(160, nextHour), update(fleet, [{ signal: 'range_km', value: -1, observedAt: nextHour - 1000 }])], { now: nextHour });
    rows = await rowsOf(fleet.workspaceId);
    expect(rows.map((r) => [r.bucket_start.toISOString(), r.signal, r.count])).toEqual([
      ['2026-11-28T00:00:00.000Z', 'soc_pct', 4],
      ['2026-11-28T01:00:00.000Z', 'range_km', 1],
      ['2026-11-28T01:00:00.000Z', 'soc_pct', 1],
    ]);
  });

  it('answers count, readingCount, firstRejectedAt and lastRejectedAt, and reads rows from before folding as one rejection each', async () => {
    const fleet = await createFleet(database.db, key, { vehicles: 1 });
    // A row as the ingest handler wrote them before migration 0016: no bucket, no first time, no reading count.
    await database.db.query(
      `INSERT INTO ingest_rejections (workspace_id, rejected_at, reason, detail, source, provider, connection_id, external_device_id, update_body)
       VALUES ($1, $2, 'unknown_device', 'from before', 'poll', 'samsara', $3, 'old-device', $4)`,
      [fleet.workspaceId, new Date(start).toISOString(), fleet.connectionId, JSON.stringify({ readings: [{ signal: 'soc_pct' }, { signal: 'odometer_km' }] })],
    );
    const now = start + minute;
    await ingestBatch(database.db, [pollOf(fleet, 'old-device', now), pollOf(fleet, 'old-device', now)], { now });

    const page = await listRejections(database.db, [fleet.workspaceId], { limit: 10 });
    expect(page.items.map((r) => [r.detail.startsWith('from before') ? 'old' : 'new', r.count, r.readingCount])).toEqual([
      ['new', 2, 6],
      ['old', 1, 2],
    ]);
    const [fresh, old] = page.items;
    expect(fresh).toMatchObject({ reason: 'unknown_device', externalDeviceId: 'old-device', firstRejectedAt: new Date(now).toISOString(), lastRejectedAt: new Date(now).toISOString() });
    expect(fresh!.rejectedAt).toBe(fresh!.lastRejectedAt);
    expect(old).toMatchObject({ firstRejectedAt: new Date(start).toISOString(), lastRejectedAt: new Date(start).toISOString(), rejectedAt: new Date(start).toISOString() });
  });

  it('keeps a day of a shared account, 50 unbound devices polled every minute, to fewer than 1,000 rows whose counts add up to every rejected reading', async () => {
    const fleet = await createFleet(database.db, key, { vehicles: 0 });
    const devices = Array.from({ length: 50 }, (_, i) => `foreign-${String(i).padStart(2, '0')}`);
    let rejectedReadings = 0;
    let rejectedUpdates = 0;
    const polls = 24 * 60;
    for (let i = 0; i < polls; i += 1) {
      const now = start + i * minute;
      // As a poll of the shared account hands them on: one update per device, 50 to the batch.
      const outcome = await ingestBatch(database.db, devices.map((d) => pollOf(fleet, d, now, i % 100)), { now });
      rejectedReadings += outcome.counts.rejected;
      rejectedUpdates += outcome.counts.updatesRejected;
    }
    expect(rejectedUpdates).toBe(polls * devices.length);
    expect(rejectedReadings).toBe(polls * devices.length * 3);

    const { rows } = await database.db.query<{ n: number; updates: number; readings: number }>(
      'SELECT count(*)::int AS n, sum(count)::int AS updates, sum(reading_count)::int AS readings FROM ingest_rejections WHERE workspace_id = $1',
      [fleet.workspaceId],
    );
    expect(rows[0]!.n).toBeLessThan(1000);
    // One cause (devices nobody bound on this connection) per hour of the day, however many devices and readings.
    expect(rows[0]!.n).toBe(24);
    expect(rows[0]!.updates).toBe(rejectedUpdates);
    expect(rows[0]!.readings).toBe(rejectedReadings);

    // Each device once in the discovered list, with every reading it sent and its latest values.
    const { rows: discovered } = await database.db.query<{ n: number; readings: number; first: Date; last: Date; sample: Record<string, { value: unknown }> }>(
      `SELECT count(*) OVER ()::int AS n, sum(reading_count) OVER ()::int AS readings, min(first_seen_at) OVER () AS first, max(last_seen_at) OVER () AS last, sample
         FROM discovered_devices WHERE workspace_id = $1 LIMIT 1`,
      [fleet.workspaceId],
    );
    expect(discovered[0]).toMatchObject({ n: 50, readings: rejectedReadings });
    expect(discovered[0]!.first.toISOString()).toBe(new Date(start).toISOString());
    expect(discovered[0]!.last.toISOString()).toBe(new Date(start + (polls - 1) * minute).toISOString());
    expect(discovered[0]!.sample.soc_pct!.value).toBe((polls - 1) % 100);
    expect(Object.keys(discovered[0]!.sample).sort()).toEqual(['location', 'odometer_km', 'soc_pct']);

    // Health at the end of the day: every reading of the last hour rejected, and 50 devices to bind or ignore.
    const [health] = await loadWorkspaceHealth(database.db, [fleet.workspaceId], start + (polls - 1) * minute + 1000);
    expect(health!.ingest).toEqual({ windowSeconds: 3600, readings: 60 * 50 * 3, rejected: 60 * 50 * 3 });
    expect(health!.discoveredDevices).toEqual({ pending: 50 });
    expect(health!.reasons.find((r) => r.code === 'rejections_high')?.detail).toMatch(/^9000 of 9000 readings in the last hour were rejected \(100 %, above 5 %\); 50 discovered devices wait/);
  }, 600_000);
});

describe('the rejections_high health reason', () => {
  async function hourOf(fleet: TestFleet, badPerPoll: number, goodPerPoll: number, from: number) {
    for (let i = 0; i < 12; i += 1) {
      const now = from + i * 5 * minute;
      const good = Array.from({ length: goodPerPoll }, (_, v) => ({
        ...update(fleet, [{ signal: 'soc_pct', value: 50, observedAt: now - 1000 }], { vehicle: v }),
        receivedAt: new Date(now).toISOString(),
      }));
      const bad = Array.from({ length: badPerPoll }, () => ({ ...update(fleet, [{ signal: 'soc_pct', value: 500, observedAt: now - 2000 }]), receivedAt: new Date(now).toISOString() }));
      await ingestBatch(database.db, [...good, ...bad], { now });
    }
  }

  it(`is given past ${rejectionShareLimit * 100} % of the last hour's readings, not at it, and not for what the hour before rejected`, async () => {
    const fleet = await createFleet(database.db, key, { vehicles: 19 });
    const from = Date.parse('2026-11-29T08:00:00.000Z');
    // One rejected of 20 each poll: exactly 5 %.
    await hourOf(fleet, 1, 19, from);
    const atLimit = (await loadWorkspaceHealth(database.db, [fleet.workspaceId], from + 55 * minute + 1000))[0]!;
    expect(atLimit.ingest).toEqual({ windowSeconds: 3600, readings: 240, rejected: 12 });
    expect(atLimit.reasons.map((r) => r.code)).not.toContain('rejections_high');

    // The next hour two of 21 each poll: 9.5 %.
    const next = from + 60 * minute;
    await hourOf(fleet, 2, 19, next);
    const past = (await loadWorkspaceHealth(database.db, [fleet.workspaceId], next + 55 * minute + 1000))[0]!;
    expect(past.ingest).toEqual({ windowSeconds: 3600, readings: 252, rejected: 24 });
    expect(past.reasons.find((r) => r.code === 'rejections_high')).toEqual({
      code: 'rejections_high',
      detail: '24 of 252 readings in the last hour were rejected (9.5 %, above 5 %)',
    });
    expect(past.status).not.toBe('ok');

    // Two hours on, nothing arrived: nothing to judge.
    const quiet = (await loadWorkspaceHealth(database.db, [fleet.workspaceId], next + 180 * minute))[0]!;
    expect(quiet.ingest).toEqual({ windowSeconds: 3600, readings: 0, rejected: 0 });
    expect(quiet.reasons.map((r) => r.code)).not.toContain('rejections_high');
  });
});
