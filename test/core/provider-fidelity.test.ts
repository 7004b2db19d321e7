/**
 * What core keeps for the providers' fidelity: a connection's options checked by its provider's contract and
 * answered back; charging sessions reported with an update, stored once per provider id and served newest first;
 * the reason a silent vehicle gives from what it last said (asleep, offline, tracker battery low); and a poll's
 * notes kept on its run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalChargingSession } from '../../src/canonical/update.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { defaultPolicy } from '../../src/core/registry/workspaces.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { samsaraContract } from '../../src/providers/samsara/contract.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, iso, update, type TestFleet } from '../support/fleet.ts';

let core: TestCore;
/** Pages the test's Samsara stand-in yields on its next poll. */
let nextPages: { notes?: string[]; socPct: number; observedAt: string; sessions?: CanonicalChargingSession[] }[] = [];

const notingAdapter: PollAdapter = {
  contract: samsaraContract as unknown as PollAdapter['contract'],
  async *poll(context) {
    for (const [i, page] of nextPages.entries()) {
      yield {
        devices: context.boundDevices.slice(0, 1).map((externalDeviceId) => ({
          externalDeviceId,
          readings: [{ signal: 'soc_pct' as const, value: page.socPct, observedAt: page.observedAt }],
          ...(page.sessions ? { chargingSessions: page.sessions } : {}),
        })),
        cursor: { page: i + 1 },
        requests: 1,
        ...(page.notes ? { notes: page.notes } : {}),
      };
    }
  },
};

beforeAll(async () => {
  core = await startTestCore({ polling: { adapters: new Map([['samsara', notingAdapter]]) } });
});
afterAll(async () => {
  await core.close();
});

const path = (fleet: TestFleet, suffix: string) => `/v1/workspaces/${fleet.workspaceId}${suffix}`;

describe('connection options', () => {
  it('refuses options a provider does not define, naming the field and never echoing the value', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const created = await core.http.admin('POST', path(fleet, '/connections'), {
      provider: 'samsara',
      transport: 'poll',
      credentials: { apiToken: 'tok-options' },
      options: { secretLooking: 'do-not-echo-9f3a' },
    });
    expect(created.status).toBe(400);
    expect(created.body.code).toBe('invalid_options');
    expect(created.text).not.toContain('do-not-echo-9f3a');

    const patched = await core.http.admin('PATCH', path(fleet, `/connections/${fleet.connectionId}`), { options: { nope: true } });
    expect(patched.status).toBe(400);
    expect(patched.body.code).toBe('invalid_options');
    // The refused change left the connection as it was.
    const after = await core.http.admin('GET', path(fleet, `/connections/${fleet.connectionId}`));
    expect(after.status).toBe(200);
    expect(after.body.options).not.toHaveProperty('nope');
  });
});

describe('charging sessions', () => {
  const t0 = Date.parse('2026-11-20T18:00:00.000Z');
  const session = (id: string, startMs: number, over: Partial<CanonicalChargingSession> = {}): CanonicalChargingSession => ({
    externalId: id,
    startedAt: iso(startMs),
    endedAt: iso(startMs + 3600_000),
    startSocPct: 20,
    endSocPct: 80,
    energyKwh: 190.5,
    peakPowerKw: 150,
    location: { lat: 52.1, lon: 4.3 },
    ...over,
  });

  it('keeps each session once by provider id, a later report replacing the earlier, newest start first with paging', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2 });
    const withSessions = (sessions: CanonicalChargingSession[], vehicle = 0) => ({
      ...update(fleet, [{ signal: 'soc_pct', value: 80, observedAt: t0 + 3600_000 }], { vehicle }),
      chargingSessions: sessions,
    });
    // A session reported while it runs (no end yet), then again when it ended.
    await ingestBatch(core.db, [withSessions([session('cs-1', t0, { endedAt: null, endSocPct: null, energyKwh: null })])]);
    await ingestBatch(core.db, [withSessions([session('cs-1', t0), session('cs-2', t0 + 86_400_000), session('cs-3', t0 - 86_400_000)])]);
    // The other vehicle's session is not this vehicle's.
    await ingestBatch(core.db, [withSessions([session('cs-other', t0)], 1)]);

    const vehicle = fleet.vehicles[0]!.id;
    const first = await core.http.admin('GET', path(fleet, `/vehicles/${vehicle}/charging-sessions?limit=2`));
    expect(first.status).toBe(200);
    expect(first.body.items.map((s: { id: string }) => s.id)).toEqual(['cs-2', 'cs-1']);
    expect(first.body.items[1]).toMatchObject({
      id: 'cs-1',
      connectionId: fleet.connectionId,
      provider: 'samsara',
      startedAt: iso(t0),
      endedAt: iso(t0 + 3600_000),
      startSocPct: 20,
      endSocPct: 80,
      energyKwh: 190.5,
      peakPowerKw: 150,
      location: { lat: 52.1, lon: 4.3 },
    });
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await core.http.admin('GET', path(fleet, `/vehicles/${vehicle}/charging-sessions?limit=2&cursor=${first.body.nextCursor}`));
    expect(second.body.items.map((s: { id: string }) => s.id)).toEqual(['cs-3']);
    expect(second.body.nextCursor).toBeNull();

    // A poll's pages carry them too (Geotab's ChargeEvent feed): stored in the page's unit of work.
    nextPages = [{ socPct: 81, observedAt: iso(t0 + 2 * 3600_000), sessions: [session('cs-polled', t0 + 2 * 86_400_000)] }];
    await core.runner.runWorkspace({ workspaceId: fleet.workspaceId, eventId: 'sessions' });
    const polled = await core.http.admin('GET', path(fleet, `/vehicles/${vehicle}/charging-sessions?limit=1`));
    expect(polled.body.items.map((s: { id: string }) => s.id)).toEqual(['cs-polled']);

    const bounded = await core.http.admin('GET', path(fleet, `/vehicles/${vehicle}/charging-sessions?from=${iso(t0)}&to=${iso(t0 + 1000)}`));
    expect(bounded.body.items.map((s: { id: string }) => s.id)).toEqual(['cs-1']);

    const missing = await core.http.admin('GET', path(fleet, '/vehicles/00000000-0000-4000-8000-000000000000/charging-sessions'));
    expect(missing.status).toBe(404);
  });

  it('rejects an update whose session ends before it starts as malformed, storing nothing of it', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const answer = await core.http.service('POST', '/internal/v1/ingest', {
      updates: [
        {
          ...update(fleet, [{ signal: 'soc_pct', value: 55, observedAt: t0 }]),
          chargingSessions: [session('backwards', t0, { endedAt: iso(t0 - 1000) })],
        },
      ],
    });
    expect(answer.status).toBe(200);
    expect(answer.body.results).toEqual([{ index: 0, status: 'rejected', reason: 'malformed', readings: [] }]);
    const stored = await core.db.query('SELECT count(*)::int AS n FROM charging_sessions WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(stored.rows[0]).toEqual({ n: 0 });
  });
});

describe('why a silent vehicle is quiet', () => {
  it('names the link it last reported (asleep, offline) or its tracker battery, and nothing when its readings say nothing', async () => {
    const policy = { ...defaultPolicy, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600 };
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 5, policy, provider: 'traccar' });
    const observedAt = core.clock.now() - 2 * 3600_000;
    const last: { signal: string; value: unknown }[][] = [
      [{ signal: 'connectivity_state', value: 'asleep' }],
      [{ signal: 'connectivity_state', value: 'offline' }],
      [{ signal: 'tracker_battery_pct', value: 12 }],
      [{ signal: 'tracker_battery_pct', value: 16 }],
      [{ signal: 'connectivity_state', value: 'online' }],
    ];
    const decided = await ingestBatch(
      core.db,
      last.map((readings, vehicle) => update(fleet, [...readings, { signal: 'soc_pct', value: 60 }].map((r) => ({ ...r, observedAt })), { vehicle })),
      { now: core.clock.now() },
    );
    expect(decided.results.flatMap((u) => u.readings.map((r) => r.status))).toEqual(Array(10).fill('accepted'));
    // Synced a minute ago: the connection is fine, the vehicles have said nothing new for two hours.
    await core.db.query('UPDATE vehicles SET last_synced_at = $2 WHERE workspace_id = $1', [fleet.workspaceId, iso(core.clock.now() - 60_000)]);

    const answer = await core.http.admin('GET', path(fleet, '/vehicles?limit=10'));
    expect(answer.status).toBe(200);
    const byName = new Map(answer.body.items.map((v: { name: string; freshness: unknown }) => [v.name, v.freshness]));
    const reason = (i: number) => (byName.get(`Vehicle ${String(i).padStart(4, '0')}`) as { status: string; reason: { code: string } | null });
    expect(last.map((_, i) => reason(i).status)).toEqual(Array(5).fill('silent'));
    expect(last.map((_, i) => reason(i).reason?.code ?? null)).toEqual(['vehicle_asleep', 'vehicle_offline', 'tracker_battery_low', null, null]);
  });
});

describe('poll notes', () => {
  it('keeps what an adapter noted on the run that noted it, in order, and nothing on a run without notes', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const observedAt = iso(core.clock.now() - 60_000);
    nextPages = [
      { socPct: 40, observedAt, notes: ['the feed cursor had expired: restarted from the last sync'] },
      { socPct: 41, observedAt, notes: ['read 2 pages of history to close the gap'] },
    ];
    await core.runner.runWorkspace({ workspaceId: fleet.workspaceId, eventId: 'noted' });
    nextPages = [{ socPct: 42, observedAt: iso(core.clock.now() - 30_000) }];
    await core.runner.runWorkspace({ workspaceId: fleet.workspaceId, eventId: 'plain' });

    const runs = await core.http.admin('GET', path(fleet, '/poll-runs?limit=10'));
    expect(runs.status).toBe(200);
    expect(runs.body.items).toHaveLength(2);
    const [plain, noted] = runs.body.items;
    expect(plain).toMatchObject({ status: 'succeeded', notes: [] });
    expect(noted).toMatchObject({
      status: 'succeeded',
      notes: ['the feed cursor had expired: restarted from the last sync', 'read 2 pages of history to close the gap'],
    });
  });
});
