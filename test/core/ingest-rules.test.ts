/**
 * Every rule and reason code of the ingest handler (DESIGN §4), against a real database.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { createConnection, updateConnection } from '../../src/core/registry/connections.ts';
import { updateVehicle } from '../../src/core/registry/vehicles.ts';
import { putCutover, putTelematicsPolicy, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { countRows, createFleet, historyOf, snapshotOf, update, type TestFleet } from '../support/fleet.ts';

let database: TestDatabase;
const key = randomBytes(32);
const now = Date.parse('2026-11-28T12:00:00.000Z');
const at = (secondsFromNow: number) => now + secondsFromNow * 1000;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

async function fleet(options: Parameters<typeof createFleet>[2] = {}): Promise<TestFleet> {
  return createFleet(database.db, key, { vehicles: 2, ...options });
}

/**
 * The stored rejection rows of a reason. Rejections of one cause (reason, connection, device, signal) within an
 * hour are one row with a count and the latest example (migration 0016), so a test counts rows per cause.
 */
async function rejectionsFor(workspaceId: string, reason: string) {
  const { rows } = await database.db.query<{ reason: string; detail: string; signal: string | null; vehicle_id: string | null; update_body: unknown; count: number; reading_count: number }>(
    'SELECT reason, detail, signal, vehicle_id, update_body, count, reading_count FROM ingest_rejections WHERE workspace_id = $1 AND reason = $2 ORDER BY id',
    [workspaceId, reason],
  );
  return rows;
}

/** Every rejection stored, however they were folded into rows: the sum of the rows' counts. */
async function storedRejections(workspaceId?: string): Promise<number> {
  const { rows } = await database.db.query<{ n: number }>(
    'SELECT coalesce(sum(count), 0)::int AS n FROM ingest_rejections WHERE $1::uuid IS NULL OR workspace_id = $1',
    [workspaceId ?? null],
  );
  return rows[0]!.n;
}

describe('shape', () => {
  it('rejects an update that is not a canonical update as malformed and stores it', async () => {
    const f = await fleet();
    const good = update(f, [{ signal: 'soc_pct', value: 50, observedAt: at(-10) }]);
    const nilBefore = await storedRejections('00000000-0000-0000-0000-000000000000');
    const outcome = await ingestBatch(
      database.db,
      [
        { ...good, source: 'carrier-pigeon' },
        { ...good, observedAt: undefined, readings: [{ signal: 'soc_pct', value: 50 }] },
        { ...good, receivedAt: '2026-02-30T00:00:00Z' },
        'not an object',
        null,
      ],
      { now },
    );
    expect(outcome.results.map((r) => [r.status, r.reason])).toEqual([
      ['rejected', 'malformed'],
      ['rejected', 'malformed'],
      ['rejected', 'malformed'],
      ['rejected', 'malformed'],
      ['rejected', 'malformed'],
    ]);
    // One cause (malformed, no connection or device) three times in the hour: one row of count 3, whose example is
    // the last of them (the impossible receivedAt).
    const stored = await rejectionsFor(f.workspaceId, 'malformed');
    expect(stored).toHaveLength(1);
    expect(stored[0]!.count).toBe(3);
    expect(stored[0]!.detail).toMatch(/receivedAt/);
    expect((stored[0]!.update_body as { receivedAt: string }).receivedAt).toBe('2026-02-30T00:00:00Z');
    // Updates that name no usable workspace are kept under the nil workspace, the last one as the example.
    expect(await storedRejections('00000000-0000-0000-0000-000000000000')).toBe(nilBefore + 2);
    const { rows } = await database.db.query<{ update_body: unknown }>(
      `SELECT update_body FROM ingest_rejections WHERE workspace_id = '00000000-0000-0000-0000-000000000000' ORDER BY rejected_at DESC, id DESC LIMIT 1`,
    );
    expect(rows[0]!.update_body).toBeNull();
    expect(await historyOf(database.db, f.vehicles[0]!.id)).toEqual([]);
  });

  it('stores offending values PostgreSQL cannot hold as-is (NUL, lone surrogates, deep nesting) without failing', async () => {
    const f = await fleet();
    let deep: unknown = 1;
    for (let i = 0; i < 5000; i += 1) deep = [deep];
    const outcome = await ingestBatch(
      database.db,
      [
        { workspaceId: f.workspaceId, provider: 'sam\u0000sara', note: '\ud800' },
        update(f, [{ signal: 'soc_pct', value: deep, observedAt: at(-5) }]),
        update(f, [{ signal: 'bad\u0000name', value: 1, observedAt: at(-5) }]),
      ],
      { now },
    );
    expect(outcome.results.map((r) => r.reason ?? r.readings[0]?.reason)).toEqual(['malformed', 'invalid_value', 'malformed']);
    expect((await rejectionsFor(f.workspaceId, 'invalid_value')).length).toBe(1);
  });
});

describe('identity and ownership', () => {
  it('answers unknown_workspace, telematics_disabled, unknown_device and device_inactive', async () => {
    const f = await fleet();
    const other = await fleet({ name: 'Other depot' });
    const reading = [{ signal: 'soc_pct', value: 60, observedAt: at(-1) }];
    const disabled = await fleet({ policy: { enabled: false } });
    await updateVehicle(database.db, f.workspaceId, f.vehicles[1]!.id, { active: false });

    const outcome = await ingestBatch(
      database.db,
      [
        update(f, reading, { workspaceId: randomUUID() }),
        update(disabled, reading),
        update(f, reading, { externalDeviceId: 'never-bound' }),
        // A device bound in another workspace is unknown here: nothing leaks across tenants.
        update(f, reading, { connectionId: other.connectionId }),
        update(f, reading, { provider: 'geotab' }),
        update(f, reading, { vehicle: 1 }),
        update(f, reading),
      ],
      { now },
    );
    expect(outcome.results.map((r) => r.reason ?? r.status)).toEqual([
      'unknown_workspace',
      'telematics_disabled',
      'unknown_device',
      'unknown_device',
      'unknown_device',
      'device_inactive',
      'processed',
    ]);
    expect(outcome.results[2]!.readings).toEqual([{ signal: 'soc_pct', status: 'rejected', reason: 'unknown_device' }]);
    const unknownDevice = await rejectionsFor(f.workspaceId, 'unknown_device');
    expect(unknownDevice.map((r) => r.detail).join('\n')).toMatch(/never-bound/);
    expect(await rejectionsFor(disabled.workspaceId, 'telematics_disabled')).toHaveLength(1);
  });

  it('answers device_inactive for a disabled connection', async () => {
    const f = await fleet();
    await updateConnection(database.db, key, f.workspaceId, f.connectionId, { enabled: false });
    const outcome = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 1, observedAt: at(-1) }])], { now });
    expect(outcome.results[0]!.reason).toBe('device_inactive');
  });

  it('lets the cutover decide between poll and legacy_poll; stream is always accepted', async () => {
    const f = await fleet();
    const reading = [{ signal: 'soc_pct', value: 61, observedAt: at(-30) }];
    const inCore = await ingestBatch(
      database.db,
      [update(f, reading, { source: 'legacy_poll' }), update(f, reading, { source: 'poll', vehicle: 1 })],
      { now },
    );
    expect(inCore.results.map((r) => r.reason ?? r.status)).toEqual(['source_not_owner', 'processed']);

    await putCutover(database.db, f.workspaceId, 'legacy');
    const streamConnection = await createConnection(database.db, key, f.workspaceId, {
      provider: 'traccar',
      transport: 'stream',
      baseUrl: 'http://127.0.0.1:1',
      credentials: { token: 't' },
    });
    await database.db.query(
      `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id) VALUES ($1, $2, 'tr-0', $3)`,
      [f.workspaceId, streamConnection.id, f.vehicles[0]!.id],
    );
    const inLegacy = await ingestBatch(
      database.db,
      [
        update(f, [{ signal: 'soc_pct', value: 62, observedAt: at(-20) }], { source: 'poll' }),
        update(f, [{ signal: 'soc_pct', value: 63, observedAt: at(-19) }], { source: 'legacy_poll' }),
        update(f, [{ signal: 'soc_pct', value: 64, observedAt: at(-18) }], {
          source: 'stream',
          provider: 'traccar',
          connectionId: streamConnection.id,
          externalDeviceId: 'tr-0',
        }),
      ],
      { now },
    );
    expect(inLegacy.results.map((r) => r.reason ?? r.status)).toEqual(['source_not_owner', 'processed', 'processed']);
    const snapshot = await snapshotOf(database.db, f.vehicles[0]!.id);
    expect(snapshot.soc_pct!.value).toBe(64);
  });
});

describe('readings', () => {
  it('answers unknown_signal and invalid_value per reading and keeps the good ones', async () => {
    const f = await fleet();
    const outcome = await ingestBatch(
      database.db,
      [
        update(f, [
          { signal: 'soc_pct', value: 55.5, observedAt: at(-10) },
          { signal: 'tyre_pressure_bar', value: 2.4, observedAt: at(-10) },
          { signal: 'soc_pct', value: 101, observedAt: at(-9) },
          { signal: 'speed_kph', value: '42', observedAt: at(-10) },
          { signal: 'location', value: { lat: 91, lon: 0 }, observedAt: at(-10) },
          { signal: 'charging_state', value: 'fast', observedAt: at(-10) },
          { signal: 'plugged_in', value: 1, observedAt: at(-10) },
          { signal: 'location', value: { lat: 52.52, lon: 13.405 }, observedAt: at(-10) },
          { signal: 'charging_state', value: 'charging', observedAt: at(-10) },
          { signal: 'heading_deg', value: 361, observedAt: at(-10) },
          { signal: 'battery_temp_c', value: -61, observedAt: at(-10) },
        ]),
      ],
      { now },
    );
    const result = outcome.results[0]!;
    expect(result.status).toBe('processed');
    expect(result.readings.map((r) => r.reason ?? r.status)).toEqual([
      'accepted',
      'unknown_signal',
      'invalid_value',
      'invalid_value',
      'invalid_value',
      'invalid_value',
      'invalid_value',
      'accepted',
      'accepted',
      'invalid_value',
      'invalid_value',
    ]);
    const snapshot = await snapshotOf(database.db, f.vehicles[0]!.id);
    expect(Object.keys(snapshot).sort()).toEqual(['charging_state', 'location', 'soc_pct']);
    expect(snapshot.location!.value).toEqual({ lat: 52.52, lon: 13.405 });
    const invalid = await rejectionsFor(f.workspaceId, 'invalid_value');
    // Seven signals, seven causes: a row each.
    expect(invalid).toHaveLength(7);
    const soc = invalid.find((r) => r.signal === 'soc_pct')!;
    expect(soc.count).toBe(1);
    // Found before the device was looked up, stored with the vehicle it belongs to.
    expect(new Set(invalid.map((r) => r.vehicle_id))).toEqual(new Set([f.vehicles[0]!.id]));
    // The stored update carries just the offending reading.
    expect((soc.update_body as { readings: unknown[] }).readings).toEqual([{ signal: 'soc_pct', value: 101, observedAt: new Date(at(-9)).toISOString() }]);
  });

  it('allows 120 s of clock skew and no more (future_timestamp)', async () => {
    const f = await fleet();
    const outcome = await ingestBatch(
      database.db,
      [
        update(f, [
          { signal: 'soc_pct', value: 70, observedAt: at(120) },
          { signal: 'range_km', value: 200, observedAt: at(120.001) },
        ]),
      ],
      { now },
    );
    expect(outcome.results[0]!.readings.map((r) => r.reason ?? r.status)).toEqual(['accepted', 'future_timestamp']);
  });

  it("rejects readings older than the workspace's retention (too_old)", async () => {
    const f = await fleet({ policy: { ...defaultPolicy, retentionDays: 7 } });
    const day = 86_400;
    const outcome = await ingestBatch(
      database.db,
      [
        update(f, [
          { signal: 'soc_pct', value: 70, observedAt: at(-7 * day) },
          { signal: 'soc_pct', value: 71, observedAt: at(-7 * day - 0.001) },
        ]),
      ],
      { now },
    );
    expect(outcome.results[0]!.readings.map((r) => r.reason ?? r.status)).toEqual(['accepted', 'too_old']);
    await putTelematicsPolicy(database.db, f.workspaceId, { ...defaultPolicy, retentionDays: 30 });
    const later = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 71, observedAt: at(-7 * day - 0.001) }])], { now });
    expect(later.results[0]!.readings[0]!.status).toBe('late');
  });

  it('rejects an odometer more than 1 km below the snapshot (implausible_value), and accepts one within 1 km', async () => {
    const f = await fleet();
    await ingestBatch(database.db, [update(f, [{ signal: 'odometer_km', value: 1000, observedAt: at(-100) }])], { now });
    const outcome = await ingestBatch(
      database.db,
      [
        update(f, [{ signal: 'odometer_km', value: 998.9, observedAt: at(-90) }]),
        update(f, [{ signal: 'odometer_km', value: 999.0, observedAt: at(-80) }]),
        // Observed before the snapshot, yet higher than it: just as impossible.
        update(f, [{ signal: 'odometer_km', value: 1001.5, observedAt: at(-200) }]),
        update(f, [{ signal: 'odometer_km', value: 990, observedAt: at(-300) }]),
      ],
      { now },
    );
    expect(outcome.results.map((r) => r.readings[0]!.reason ?? r.readings[0]!.status)).toEqual([
      'implausible_value',
      'accepted',
      'implausible_value',
      'late',
    ]);
    const snapshot = await snapshotOf(database.db, f.vehicles[0]!.id);
    expect(snapshot.odometer_km).toEqual({ value: 999, observedAt: new Date(at(-80)).toISOString() });
    const stored = await rejectionsFor(f.workspaceId, 'implausible_value');
    // Both refusals are of one cause (the vehicle's odometer): one row counting two, the later one its example.
    expect(stored).toHaveLength(1);
    expect([stored[0]!.count, stored[0]!.reading_count]).toEqual([2, 2]);
    expect(stored[0]!.detail).toMatch(/1001\.5 is above 1000/);
  });
});

describe('classification', () => {
  it('moves the snapshot forward only; older readings are late (history only); repeats are duplicates', async () => {
    const f = await fleet();
    const v = f.vehicles[0]!.id;
    const first = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 80, observedAt: at(-60) }])], { now });
    expect(first.results[0]!.readings[0]!.status).toBe('accepted');

    const older = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 85, observedAt: at(-120) }])], { now });
    expect(older.results[0]!.readings[0]!.status).toBe('late');
    expect((await snapshotOf(database.db, v)).soc_pct!.value).toBe(80);

    const again = await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 99, observedAt: at(-60) }])], { now });
    expect(again.results[0]!.readings[0]!.status).toBe('duplicate');
    // A duplicate writes nothing: the first value stays in history and snapshot.
    expect(await historyOf(database.db, v, 'soc_pct')).toEqual([
      { signal: 'soc_pct', value: 85, observedAt: new Date(at(-120)).toISOString() },
      { signal: 'soc_pct', value: 80, observedAt: new Date(at(-60)).toISOString() },
    ]);
    expect((await snapshotOf(database.db, v)).soc_pct!.value).toBe(80);
  });

  it('applies readings of one vehicle in observed-time order within a batch, whatever order they came in', async () => {
    const f = await fleet();
    const v = f.vehicles[0]!.id;
    const outcome = await ingestBatch(
      database.db,
      [
        update(f, [{ signal: 'soc_pct', value: 70, observedAt: at(-10) }]),
        update(f, [{ signal: 'soc_pct', value: 72, observedAt: at(-30) }]),
        update(f, [
          { signal: 'soc_pct', value: 71, observedAt: at(-20) },
          { signal: 'soc_pct', value: 71, observedAt: at(-20) },
        ]),
        update(f, [{ signal: 'odometer_km', value: 10.5, observedAt: at(-10) }]),
        update(f, [{ signal: 'odometer_km', value: 10, observedAt: at(-20) }]),
      ],
      { now },
    );
    expect(outcome.results.flatMap((r) => r.readings.map((x) => x.status))).toEqual([
      'accepted',
      'accepted',
      'accepted',
      'duplicate',
      'accepted',
      'accepted',
    ]);
    const snapshot = await snapshotOf(database.db, v);
    expect(snapshot.soc_pct!.value).toBe(70);
    expect(snapshot.odometer_km!.value).toBe(10.5);
    expect(outcome.counts).toMatchObject({ accepted: 5, duplicate: 1, late: 0, rejected: 0 });
  });

  it("marks the vehicle's sync and observed clocks", async () => {
    const f = await fleet();
    await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 50, observedAt: at(-30) }, { signal: 'speed_kph', value: 0, observedAt: at(-40) }])], { now });
    const { rows } = await database.db.query<{ last_synced_at: Date; last_observed_at: Date }>(
      'SELECT last_synced_at, last_observed_at FROM vehicles WHERE id = $1',
      [f.vehicles[0]!.id],
    );
    expect(rows[0]!.last_observed_at.toISOString()).toBe(new Date(at(-30)).toISOString());
    expect(Date.now() - rows[0]!.last_synced_at.getTime()).toBeLessThan(60_000);
    // The other vehicle was not in the batch.
    const other = await database.db.query<{ last_synced_at: Date | null }>('SELECT last_synced_at FROM vehicles WHERE id = $1', [f.vehicles[1]!.id]);
    expect(other.rows[0]!.last_synced_at).toBeNull();
  });

  it('replaying a batch is idempotent: the second pass is all duplicates and changes nothing', async () => {
    const f = await fleet({ vehicles: 3 });
    const batch = f.vehicles.flatMap((_, i) => [
      update(f, [
        { signal: 'soc_pct', value: 40 + i, observedAt: at(-50 + i) },
        { signal: 'location', value: { lat: 48 + i / 100, lon: 11 }, observedAt: at(-50 + i) },
        { signal: 'odometer_km', value: 5000 + i, observedAt: at(-49 + i) },
      ], { vehicle: i }),
    ]);
    const first = await ingestBatch(database.db, batch, { now });
    expect(first.counts).toMatchObject({ accepted: 9, duplicate: 0 });
    const historyBefore = await countRows(database.db, 'signal_history');
    const snapshots = await Promise.all(f.vehicles.map((v) => snapshotOf(database.db, v.id)));
    const second = await ingestBatch(database.db, batch, { now });
    expect(second.counts).toMatchObject({ accepted: 0, late: 0, duplicate: 9, rejected: 0 });
    expect(await countRows(database.db, 'signal_history')).toBe(historyBefore);
    expect(await Promise.all(f.vehicles.map((v) => snapshotOf(database.db, v.id)))).toEqual(snapshots);
  });

  it('accepts an update with no readings as a sync of its vehicle', async () => {
    const f = await fleet();
    const outcome = await ingestBatch(database.db, [update(f, [])], { now });
    expect(outcome.results[0]).toEqual({ index: 0, status: 'processed', readings: [] });
  });
});

describe('unit of work', () => {
  it('writes nothing when the transaction fails, and the same batch succeeds afterwards', async () => {
    const f = await fleet();
    const batch = [
      update(f, [{ signal: 'soc_pct', value: 33, observedAt: at(-5) }]),
      update(f, [{ signal: 'nope', value: 1, observedAt: at(-5) }]),
      { broken: true },
    ];
    const historyBefore = await countRows(database.db, 'signal_history');
    const rejectionsBefore = await storedRejections();
    await expect(
      ingestBatch(database.db, batch, {
        now,
        withinTransaction: async () => {
          throw new Error('commit failed');
        },
      }),
    ).rejects.toThrow('commit failed');
    expect(await countRows(database.db, 'signal_history')).toBe(historyBefore);
    expect(await storedRejections()).toBe(rejectionsBefore);
    expect(await snapshotOf(database.db, f.vehicles[0]!.id)).toEqual({});
    const { rows } = await database.db.query<{ last_synced_at: Date | null }>('SELECT last_synced_at FROM vehicles WHERE id = $1', [f.vehicles[0]!.id]);
    expect(rows[0]!.last_synced_at).toBeNull();

    const retried = await ingestBatch(database.db, batch, { now });
    expect(retried.results.map((r) => r.readings[0]?.status ?? r.reason)).toEqual(['accepted', 'rejected', 'malformed']);
    // Two rejections stored, one of them added to the count of the nil workspace's malformed row of this hour.
    expect(await storedRejections()).toBe(rejectionsBefore + 2);
  });

  it('runs the caller’s writes in the same transaction (a poll’s cursor)', async () => {
    const f = await fleet();
    await ingestBatch(database.db, [update(f, [{ signal: 'soc_pct', value: 10, observedAt: at(-5) }])], {
      now,
      withinTransaction: async (tx) => {
        await tx.query(`UPDATE provider_connections SET feed_cursor = '{"after":"abc"}' WHERE id = $1`, [f.connectionId]);
      },
    });
    const { rows } = await database.db.query<{ feed_cursor: unknown }>('SELECT feed_cursor FROM provider_connections WHERE id = $1', [f.connectionId]);
    expect(rows[0]!.feed_cursor).toEqual({ after: 'abc' });
  });
});
