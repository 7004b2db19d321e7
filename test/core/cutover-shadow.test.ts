/**
 * Cutover without a leap of faith (docs/OPERATIONS.md, "Migrating a workspace"), on a real core over HTTP: in
 * `shadow` core's polling goes through every check of the one ingest handler but lands in the shadow store only,
 * never in the snapshot, the owned history or the events; parity pairs the two pollers' readings and finds an
 * injected unit error and an injected gap, naming the vehicles; the gate to core refuses with each shortfall, then
 * allows with good parity or a forced change with a reason; every change is recorded; a rollback lets the poll runs
 * that started before it commit, refuses the ones after, and takes the legacy poller's updates at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { runRetention } from '../../src/core/maintenance/retention.ts';
import { putCutover } from '../../src/core/registry/workspaces.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { countRows, createFleet, historyOf, iso, snapshotOf, type TestFleet } from '../support/fleet.ts';
import { feedTwoHours, hoursBefore, miles, updateAt, type ParityDefects } from '../support/parity-feed.ts';

let core: TestCore;
beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

const minute = 60_000;
const hour = 3600_000;
/** Whole hours before the one the test's clock is in (readings there are all in the past, whatever the time). */
const hoursAgo = (n: number) => hoursBefore(core.clock.now(), n);

const at = updateAt;

async function eventCount(fleet: TestFleet): Promise<number> {
  const { rows } = await core.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE workspace_id = $1', [fleet.workspaceId]);
  return rows[0]!.n;
}

async function shadowFleet(vehicles: number): Promise<TestFleet> {
  const fleet = await createFleet(core.db, core.secretKey, { vehicles, cutover: 'legacy' });
  await putCutover(core.db, fleet.workspaceId, 'shadow');
  return fleet;
}

const twoHours = (fleet: TestFleet, defects?: ParityDefects) => feedTwoHours(core.db, fleet, core.clock.now(), defects);

describe('a workspace in shadow', () => {
  it("keeps core's readings out of the snapshot, the owned history and the events, with every check still made", async () => {
    const fleet = await shadowFleet(1);
    const t = hoursAgo(1);
    const now = core.clock.now();
    await ingestBatch(core.db, [at(fleet, 0, 'legacy_poll', t, { soc_pct: 55, odometer_km: 621.4 })], { now });
    const events = await eventCount(fleet);
    expect(events).toBeGreaterThan(0);

    const shadow = await ingestBatch(core.db, [at(fleet, 0, 'poll', t + minute, { soc_pct: 54, odometer_km: 1000.2, charging_state: 'charging', speed_kph: -5 })], { now });
    expect(shadow.results[0]!.readings.map((r) => [r.signal, r.status, r.reason])).toEqual([
      ['soc_pct', 'shadowed', undefined],
      // Judged against core's own readings, not the legacy poller's 621.4 (miles): no counter went backwards.
      ['odometer_km', 'shadowed', undefined],
      ['charging_state', 'shadowed', undefined],
      ['speed_kph', 'rejected', 'invalid_value'],
    ]);
    expect(shadow.counts).toMatchObject({ accepted: 0, shadowed: 3, rejected: 1 });
    // Core's odometer never runs backwards either: checked against core's previous shadow reading.
    const backwards = await ingestBatch(core.db, [at(fleet, 0, 'poll', t + 2 * minute, { odometer_km: 990 })], { now });
    expect(backwards.results[0]!.readings[0]).toMatchObject({ status: 'rejected', reason: 'implausible_value' });

    const snapshot = await snapshotOf(core.db, fleet.vehicles[0]!.id);
    expect(Object.fromEntries(Object.entries(snapshot).map(([signal, s]) => [signal, s.value]))).toEqual({ soc_pct: 55, odometer_km: 621.4 });
    expect((await historyOf(core.db, fleet.vehicles[0]!.id)).map((h) => [h.signal, h.value]).sort()).toEqual([
      ['odometer_km', 621.4],
      ['soc_pct', 55],
    ]);
    const { rows: sources } = await core.db.query<{ source: string }>('SELECT DISTINCT source FROM signal_history WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(sources.map((r) => r.source)).toEqual(['legacy_poll']);
    expect(await eventCount(fleet)).toBe(events);
    const { rows: kept } = await core.db.query<{ side: string; signal: string }>(
      'SELECT side, signal FROM shadow_readings WHERE workspace_id = $1 ORDER BY side, signal',
      [fleet.workspaceId],
    );
    expect(kept.map((r) => `${r.side} ${r.signal}`)).toEqual(['core charging_state', 'core odometer_km', 'core soc_pct', 'legacy odometer_km', 'legacy soc_pct']);
    // The refusals are recorded like any others, for the operator to see.
    const rejections = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/rejections`);
    expect((rejections.body.items as { reason: string }[]).map((r) => r.reason).sort()).toEqual(['implausible_value', 'invalid_value']);
  });

  it('finds an injected unit error and an injected gap, and names the vehicles', async () => {
    const fleet = await shadowFleet(3);
    // Vehicle 1: the legacy poller reports its odometer in miles. Vehicle 2: core's polling misses 40 minutes.
    const gapFrom = hoursAgo(3) + 30 * minute;
    await twoHours(fleet, {
      legacyOdometer: (v, km) => (v === 1 ? Math.round(km * miles * 10) / 10 : km),
      coreSkips: (v, ms) => v === 2 && ms >= gapFrom && ms < gapFrom + 40 * minute,
    });
    const answer = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/cutover/parity?window=6h`);
    expect(answer.status).toBe(200);
    const report = answer.body;
    expect(report.window).toMatchObject({ hours: 6, from: iso(hoursAgo(5)) });
    expect(Date.parse(report.window.to)).toBeGreaterThan(hoursAgo(0));
    // 3 vehicles x 24 visits x 2 signals from the legacy poller; core missed 8 visits x 2 signals of vehicle 2.
    expect(report.summary).toMatchObject({ legacyReadings: 144, coreReadings: 128, pairs: 128, missingInCore: 16, missingInLegacy: 0, agreed: 104 });
    expect(report.summary.coveragePct).toBeCloseTo((128 / 144) * 100, 1);
    expect(report.summary.agreementPct).toBeCloseTo((104 / 128) * 100, 1);
    expect(report.summary.freshness.core.meanLagSeconds).toBeCloseTo(10, 0);
    expect(report.summary.freshness.legacy.meanLagSeconds).toBeCloseTo(20, 0);
    const odometer = report.bySignal.find((s: { signal: string }) => s.signal === 'odometer_km');
    expect(odometer).toMatchObject({ pairs: 64, agreed: 40 });
    expect(report.bySignal.find((s: { signal: string }) => s.signal === 'soc_pct')).toMatchObject({ pairs: 64, agreed: 64 });

    const worst = report.worstVehicles as { vehicleId: string; vehicleName: string; worstSignal: string; coveragePct: number; agreementPct: number }[];
    expect(worst.map((v) => [v.vehicleId, v.worstSignal])).toEqual([
      [fleet.vehicles[1]!.id, 'odometer_km'],
      [fleet.vehicles[2]!.id, 'odometer_km'],
    ]);
    expect(worst[0]).toMatchObject({ vehicleName: 'Vehicle 0001', agreementPct: 50 });
    expect(worst[1]!.coveragePct).toBeCloseTo((16 / 24) * 100, 1);

    const differences = report.differences as { vehicleId: string; kind: string; core?: number; legacy?: number; observedAt: string }[];
    const disagreement = differences.find((d) => d.kind === 'disagreement');
    expect(disagreement).toMatchObject({ vehicleId: fleet.vehicles[1]!.id });
    expect(disagreement!.legacy! / disagreement!.core!).toBeCloseTo(miles, 2);
    const gaps = differences.filter((d) => d.kind === 'missing_in_core');
    expect(gaps.map((d) => d.vehicleId)).toEqual([fleet.vehicles[2]!.id, fleet.vehicles[2]!.id, fleet.vehicles[2]!.id]);
    expect(gaps[0]!.observedAt).toBe(iso(gapFrom));

    expect(report.gate.met).toBe(false);
    expect(report.gate.reasons).toEqual([expect.stringMatching(/^coverage 88\.89 % is below 99 %/), expect.stringMatching(/^agreement 81\.25 % is below 99 %/)]);
    // Sent again (a poller that re-reads its feed), nothing is counted twice.
    await twoHours(fleet, { legacyOdometer: (v, km) => (v === 1 ? Math.round(km * miles * 10) / 10 : km), coreSkips: (v, ms) => v === 2 && ms >= gapFrom && ms < gapFrom + 40 * minute });
    expect((await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/cutover/parity?window=6h`)).body.summary).toMatchObject({ legacyReadings: 144, pairs: 128, agreed: 104 });
  });
});

describe("parity's tolerances", () => {
  it('agrees within 25 m of location and 0.5 points of SoC, and exactly for states', async () => {
    const fleet = await shadowFleet(1);
    const t = hoursAgo(1);
    const north = (metres: number) => ({ lat: 52.52 + metres / 111_195, lon: 13.405 });
    const now = core.clock.now();
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ location: north(0) }, { location: north(20) }],
      [{ location: north(0) }, { location: north(30) }],
      [{ soc_pct: 50 }, { soc_pct: 50.5 }],
      [{ soc_pct: 50 }, { soc_pct: 50.6 }],
      [{ charging_state: 'charging' }, { charging_state: 'charging' }],
      [{ charging_state: 'charging' }, { charging_state: 'complete' }],
    ];
    for (const [i, [legacy, polled]] of cases.entries()) {
      await ingestBatch(core.db, [at(fleet, 0, 'legacy_poll', t + i * minute, legacy)], { now });
      await ingestBatch(core.db, [at(fleet, 0, 'poll', t + i * minute, polled)], { now });
    }
    const { rows } = await core.db.query<{ signal: string; agreed: boolean }>(
      `SELECT signal, agreed FROM shadow_readings WHERE workspace_id = $1 AND side = 'core' ORDER BY observed_at`,
      [fleet.workspaceId],
    );
    expect(rows.map((r) => [r.signal, r.agreed])).toEqual([
      ['location', true],
      ['location', false],
      ['soc_pct', true],
      ['soc_pct', false],
      ['charging_state', true],
      ['charging_state', false],
    ]);
  });
});

describe('the gate and the way back', () => {
  it('refuses core with the reasons, allows it forced with a reason or with good parity, and records every change', async () => {
    const poor = await shadowFleet(2);
    await twoHours(poor, { legacyOdometer: (v, km) => (v === 0 ? km * 1.6 : km) });
    const refused = await core.http.admin('PUT', `/v1/workspaces/${poor.workspaceId}/cutover`, { mode: 'core' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'parity_not_met', reasons: [expect.stringMatching(/^agreement 75 % is below 99 %/)] });
    expect((await core.http.admin('GET', `/v1/workspaces/${poor.workspaceId}`)).body.cutover.mode).toBe('shadow');
    const noReason = await core.http.admin('PUT', `/v1/workspaces/${poor.workspaceId}/cutover`, { mode: 'core', force: true });
    expect(noReason.status).toBe(400);
    expect(noReason.body.code).toBe('reason_required');
    const forced = await core.http.admin('PUT', `/v1/workspaces/${poor.workspaceId}/cutover`, { mode: 'core', force: true, reason: 'vehicle 0 is being re-fitted', actor: 'depot lead' });
    expect(forced.status).toBe(200);
    expect(forced.body.cutover.mode).toBe('core');

    const good = await shadowFleet(2);
    await twoHours(good);
    const allowed = await core.http.admin('PUT', `/v1/workspaces/${good.workspaceId}/cutover`, { mode: 'core', reason: 'parity held for a day' });
    expect(allowed.status).toBe(200);

    const history = await core.http.admin('GET', `/v1/workspaces/${poor.workspaceId}/cutover/transitions`);
    expect(history.body.items.map((t: { from: string; to: string; actor: string; forced: boolean; reason: string | null }) => [t.from, t.to, t.actor, t.forced, t.reason])).toEqual([
      ['shadow', 'core', 'depot lead', true, 'vehicle 0 is being re-fitted'],
      ['legacy', 'shadow', 'system', false, null],
    ]);
    expect(history.body.items[0].parity.gate).toMatchObject({ met: false });
    const goodHistory = await core.http.admin('GET', `/v1/workspaces/${good.workspaceId}/cutover/transitions`);
    expect(goodHistory.body.items[0]).toMatchObject({ from: 'shadow', to: 'core', actor: 'admin token', forced: false, parity: { gate: { met: true, reasons: [] } } });
    const { rows: told } = await core.db.query<{ data: Record<string, unknown> }>(
      `SELECT data::json AS data FROM events WHERE workspace_id = $1 AND type = 'fleetwire.workspace.cutover.changed' ORDER BY events.position`,
      [poor.workspaceId],
    );
    expect(told.map((e) => e.data)).toEqual([
      { workspaceId: poor.workspaceId, mode: 'shadow', previousMode: 'legacy', actor: 'system', reason: null, forced: false },
      { workspaceId: poor.workspaceId, mode: 'core', previousMode: 'shadow', actor: 'depot lead', reason: 'vehicle 0 is being re-fitted', forced: true },
    ]);
  });

  it("rolls back in one call: the legacy poller at once, core's runs from before it still commit, none after", async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1 });
    const { rows } = await core.db.query<{ generation: number }>('SELECT generation FROM cutover_states WHERE workspace_id = $1', [fleet.workspaceId]);
    const before = Number(rows[0]!.generation);
    const rolledBack = await core.http.admin('PUT', `/v1/workspaces/${fleet.workspaceId}/cutover`, { mode: 'legacy', reason: 'core misreads odometers' });
    expect(rolledBack.body.cutover.mode).toBe('legacy');
    const t = hoursAgo(1);
    const now = core.clock.now();
    const inFlight = await ingestBatch(core.db, [at(fleet, 0, 'poll', t, { soc_pct: 41 })], { now, pollCutoverGeneration: before });
    expect(inFlight.results[0]!.readings[0]!.status).toBe('accepted');
    const after = await ingestBatch(core.db, [at(fleet, 0, 'poll', t + minute, { soc_pct: 40 })], { now, pollCutoverGeneration: before + 1 });
    expect(after.results[0]).toMatchObject({ status: 'rejected', reason: 'source_not_owner' });
    const legacy = await ingestBatch(core.db, [at(fleet, 0, 'legacy_poll', t + 2 * minute, { soc_pct: 39 })], { now });
    expect(legacy.results[0]!.readings[0]!.status).toBe('accepted');
    expect((await historyOf(core.db, fleet.vehicles[0]!.id, 'soc_pct')).map((h) => h.value)).toEqual([41, 39]);
  });

  it('keeps parity for the gate window and a day, then lets it go', async () => {
    const fleet = await shadowFleet(1);
    await twoHours(fleet);
    const kept = await countRows(core.db, 'shadow_readings');
    expect(kept).toBeGreaterThan(0);
    await runRetention(core.db, core.clock.now());
    expect(await countRows(core.db, 'shadow_readings')).toBe(kept);
    await runRetention(core.db, core.clock.now() + 2 * 24 * hour);
    const { rows } = await core.db.query<{ n: number }>(
      'SELECT (SELECT count(*) FROM shadow_readings WHERE workspace_id = $1)::int + (SELECT count(*) FROM parity_hours WHERE workspace_id = $1)::int AS n',
      [fleet.workspaceId],
    );
    expect(rows[0]!.n).toBe(0);
  });
});
