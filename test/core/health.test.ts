/**
 * Freshness and health (DESIGN §8): every vehicle status at its exact threshold, every connection status, every
 * roll-up reason; the health API, the status filter, the metrics; and health following a simulator that stops
 * answering and comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countVehiclesByStatus } from '../../src/core/health/health-queries.ts';
import { connectionHealth, freshRatio, staleReason, workspaceHealth, type ConnectionFacts } from '../../src/core/health/rules.ts';
import { listVehicles } from '../../src/core/read/vehicles.ts';
import { createWorkspace, defaultPolicy, putTelematicsPolicy } from '../../src/core/registry/workspaces.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { FaultInjector } from '../../src/sim/faults.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet } from '../support/fleet.ts';
import { connectSimulator } from '../support/simulated.ts';

let core: TestCore;
const now = Date.parse('2026-11-28T12:00:00.000Z');

beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

async function setClocks(vehicleId: string, syncedAgoMs: number | null, observedAgoMs: number | null): Promise<void> {
  await core.db.query('UPDATE vehicles SET last_synced_at = $2, last_observed_at = $3 WHERE id = $1', [
    vehicleId,
    syncedAgoMs === null ? null : new Date(now - syncedAgoMs).toISOString(),
    observedAgoMs === null ? null : new Date(now - observedAgoMs).toISOString(),
  ]);
}

describe('vehicle freshness', () => {
  it('is never, stale, silent or fresh by the two clocks, with an age exactly at a threshold still within it', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 7, policy: { ...defaultPolicy, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600 } });
    const [never, fresh, atFreshness, pastFreshness, atSilence, pastSilence, syncedNever] = fleet.vehicles.map((v) => v.id);
    await setClocks(never!, null, null);
    await setClocks(fresh!, 10_000, 20_000);
    await setClocks(atFreshness!, 300_000, 300_000);
    await setClocks(pastFreshness!, 300_001, 300_001);
    await setClocks(atSilence!, 60_000, 3_600_000);
    await setClocks(pastSilence!, 60_000, 3_600_001);
    await setClocks(syncedNever!, null, 1000);

    const page = await listVehicles(core.db, fleet.workspaceId, { limit: 100 }, now);
    const status = new Map(page.items.map((v) => [v.id, v.freshness]));
    expect(status.get(never!)).toMatchObject({ status: 'never', syncAgeSeconds: null, observedAgeSeconds: null });
    expect(status.get(fresh!)).toMatchObject({ status: 'fresh', syncAgeSeconds: 10, observedAgeSeconds: 20 });
    expect(status.get(atFreshness!)!.status).toBe('fresh');
    expect(status.get(pastFreshness!)!.status).toBe('stale');
    expect(status.get(atSilence!)!.status).toBe('fresh');
    expect(status.get(pastSilence!)!.status).toBe('silent');
    expect(status.get(syncedNever!)!.status).toBe('stale');

    const counts = await countVehiclesByStatus(core.db, [fleet.workspaceId], now);
    expect(counts.get(fleet.workspaceId)).toEqual({ never: 1, fresh: 3, stale: 2, silent: 1 });
    const stale = await listVehicles(core.db, fleet.workspaceId, { limit: 100, status: 'stale' }, now);
    expect(stale.items.map((v) => v.id).sort()).toEqual([pastFreshness!, syncedNever!].sort());

    // The policy's thresholds decide: a longer freshness threshold makes the stale one fresh again.
    await putTelematicsPolicy(core.db, fleet.workspaceId, { ...defaultPolicy, freshnessThresholdSeconds: 301, silentAfterSeconds: 3600 });
    const relaxed = await listVehicles(core.db, fleet.workspaceId, { limit: 100, status: 'stale' }, now);
    expect(relaxed.items.map((v) => v.id)).toEqual([syncedNever!]);
  });
});

describe('connection health', () => {
  const poll = (p: Partial<NonNullable<ConnectionFacts['poll']>>, enabled = true): ConnectionFacts => ({
    enabled,
    credentialsUnreadableAt: null,
    transport: 'poll',
    pollIntervalSeconds: 60,
    stream: null,
    poll: {
      lastAttemptAt: now - 5000,
      lastSuccessAt: now - 5000,
      lastErrorAt: null,
      lastErrorClass: null,
      lastErrorMessage: null,
      consecutiveFailures: 0,
      nextPollAt: null,
      rateLimitedUntil: null,
      authFailedAt: null,
      ...p,
    },
  });
  const stream = (s: Partial<NonNullable<ConnectionFacts['stream']>> | null, enabled = true): ConnectionFacts => ({
    enabled,
    credentialsUnreadableAt: null,
    transport: 'stream',
    pollIntervalSeconds: 60,
    poll: null,
    stream: s === null ? null : { connected: true, lastMessageAt: now - 1000, lastErrorClass: null, lastError: null, lastErrorAt: null, nextReconnectAt: null, reportedAt: now - 2000, ...s },
  });

  it('tells ok, rate_limited, failing (from 3 failures in a row), auth_failed and disabled apart for poll connections', () => {
    expect(connectionHealth(poll({}), now)).toMatchObject({ status: 'ok', nextAttemptAt: now - 5000 + 60_000 });
    expect(connectionHealth(poll({ rateLimitedUntil: now + 30_000 }), now)).toMatchObject({ status: 'rate_limited', nextAttemptAt: now + 30_000 });
    expect(connectionHealth(poll({ rateLimitedUntil: now - 1 }), now).status).toBe('ok');
    expect(connectionHealth(poll({ consecutiveFailures: 2, lastErrorClass: 'transient' }), now).status).toBe('ok');
    const failing = connectionHealth(poll({ consecutiveFailures: 3, lastErrorClass: 'transient', lastErrorMessage: 'HTTP 503', lastErrorAt: now - 1000, nextPollAt: now + 60_000 }), now);
    expect(failing).toMatchObject({ status: 'failing', nextAttemptAt: now + 60_000, lastError: { class: 'transient', message: 'HTTP 503', at: now - 1000 } });
    expect(connectionHealth(poll({ authFailedAt: now - 10_000, consecutiveFailures: 5 }), now)).toMatchObject({ status: 'auth_failed', nextAttemptAt: null });
    expect(connectionHealth(poll({ authFailedAt: now }, false), now).status).toBe('disabled');
  });

  it('tells ok, disconnected, auth_failed, rate_limited and disabled apart for stream connections', () => {
    expect(connectionHealth(stream({}), now).status).toBe('ok');
    expect(connectionHealth(stream(null), now).status).toBe('disconnected');
    expect(connectionHealth(stream({ reportedAt: now - 61_000 }), now).status).toBe('disconnected');
    expect(connectionHealth(stream({ connected: false, lastErrorClass: 'closed', nextReconnectAt: now + 2000 }), now)).toMatchObject({ status: 'disconnected', nextAttemptAt: now + 2000 });
    expect(connectionHealth(stream({ connected: false, lastErrorClass: 'auth' }), now).status).toBe('auth_failed');
    expect(connectionHealth(stream({ connected: false, lastErrorClass: 'rate_limited' }), now).status).toBe('rate_limited');
    expect(connectionHealth(stream({}, false), now).status).toBe('disabled');
  });
});

describe('workspace roll-up', () => {
  const counts = (fresh: number, stale: number, silent = 0, never = 0) => ({ fresh, stale, silent, never });
  const ok = { label: 'Samsara', status: 'ok' as const, detail: 'polling' };

  it('is ok when every vehicle is in sync and every connection works', () => {
    expect(workspaceHealth({ enabled: true, counts: counts(5, 0, 3), connections: [ok] })).toEqual({ status: 'ok', reasons: [] });
    expect(freshRatio(counts(5, 0, 3))).toBe(1);
    expect(freshRatio(counts(0, 0, 0, 4))).toBeNull();
    expect(freshRatio(counts(3, 1))).toBe(0.75);
  });

  it('is degraded, with the reasons, when some vehicles are stale, a connection is in trouble, vehicles never reported, or telematics is off', () => {
    expect(workspaceHealth({ enabled: true, counts: counts(5, 1), connections: [ok] })).toEqual({
      status: 'degraded',
      reasons: [{ code: 'vehicles_stale', detail: '1 of 6 reporting vehicles are not synced within the freshness threshold' }],
    });
    for (const status of ['rate_limited', 'failing', 'auth_failed', 'disconnected'] as const) {
      const health = workspaceHealth({ enabled: true, counts: counts(5, 0), connections: [ok, { label: 'Traccar', status, detail: 'trouble' }] });
      expect(health).toEqual({ status: 'degraded', reasons: [{ code: `connection_${status}`, detail: 'Traccar: trouble' }] });
    }
    expect(workspaceHealth({ enabled: true, counts: counts(5, 0, 0, 2), connections: [ok] }).reasons.map((r) => r.code)).toEqual(['vehicles_never_reported']);
    expect(workspaceHealth({ enabled: false, counts: counts(0, 0), connections: [ok] }).reasons.map((r) => r.code)).toEqual(['telematics_disabled']);
    expect(workspaceHealth({ enabled: true, counts: counts(0, 0), connections: [{ ...ok, status: 'disabled' }] }).reasons.map((r) => r.code)).toEqual(['no_connections']);
  });

  it('is failing when most reporting vehicles are stale, or every connection is down', () => {
    const mostlyStale = workspaceHealth({ enabled: true, counts: counts(2, 3), connections: [ok] });
    expect(mostlyStale.status).toBe('failing');
    expect(mostlyStale.reasons[0]!.code).toBe('vehicles_stale');
    expect(workspaceHealth({ enabled: true, counts: counts(2, 2), connections: [ok] }).status).toBe('degraded');
    const allDown = workspaceHealth({ enabled: true, counts: counts(5, 0), connections: [{ ...ok, status: 'failing', detail: 'x' }, { label: 'T', status: 'auth_failed', detail: 'y' }] });
    expect(allDown.status).toBe('failing');
    expect(allDown.reasons.map((r) => r.code)).toEqual(['all_connections_down', 'connection_failing', 'connection_auth_failed']);
  });

  it("names the worst trouble of a stale vehicle's connections as the reason it is behind", () => {
    const health = new Map([
      ['a', { status: 'rate_limited' as const, detail: 'limited', label: 'A' }],
      ['b', { status: 'failing' as const, detail: '3 polls failed', label: 'B' }],
      ['c', { status: 'ok' as const, detail: 'polling', label: 'C' }],
    ]);
    expect(staleReason(['a', 'b'], health)).toEqual({ code: 'connection_failing', detail: 'B: 3 polls failed', connectionId: 'b' });
    expect(staleReason(['c'], health).code).toBe('not_synced');
    expect(staleReason([], health).code).toBe('no_devices');
  });
});

describe('health API', () => {
  let sim: RunningSimulator;
  const faults = new FaultInjector();
  const fleet = new FleetModel({ seed: 77, vehicles: 4, startMs: Date.now() - 60_000, timeScale: 5 });

  beforeAll(async () => {
    sim = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'health-token' }, fleet }], faults, timeoutMs: 1000 });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it('follows a simulator that stops answering (failing connection, stale vehicles, with the reason) and comes back (ok)', async () => {
    const ws = (await createWorkspace(core.db, { name: 'Health depot', policy: { ...defaultPolicy, freshnessThresholdSeconds: 10, silentAfterSeconds: 3600 } })).id;
    const connection = await connectSimulator(core.db, core.secretKey, ws, {
      provider: 'samsara',
      baseUrl: sim.url,
      credentials: { apiToken: 'health-token' },
      externalIds: fleet.vehicles.map((v) => v.samsaraId),
    });
    const key = (await core.http.admin('POST', `/v1/workspaces/${ws}/api-keys`, { name: 'board' })).body.key;
    const health = async () => (await core.http.request('GET', `/v1/workspaces/${ws}/health`, { token: key })).body;
    const pollNow = async (eventId: string) => {
      // Whatever backoff the last failure set, this poll is due (the test stands in for the passing minutes).
      await core.db.query('UPDATE connection_poll_states SET next_poll_at = NULL WHERE connection_id = $1', [connection.connectionId]);
      await core.runner.runWorkspace({ workspaceId: ws, eventId });
    };

    await pollNow('health-1');
    const good = await health();
    expect(good).toMatchObject({ status: 'ok', reasons: [], cutover: { mode: 'core' } });
    expect(good.freshness).toMatchObject({ thresholdSeconds: 10, counts: { fresh: 4, stale: 0, never: 0 }, freshRatio: 1 });
    expect(good.connections).toEqual([expect.objectContaining({ id: connection.connectionId, status: 'ok', transport: 'poll', provider: 'samsara' })]);

    faults.startOutage('server_error');
    for (let i = 0; i < 3; i += 1) await pollNow(`health-outage-${i}`);
    const failingConnection = await health();
    expect(failingConnection.connections[0]).toMatchObject({ status: 'failing', lastError: { class: 'transient' } });
    expect(failingConnection.status).toBe('failing');
    expect(failingConnection.reasons.map((r: { code: string }) => r.code)).toContain('connection_failing');

    // Ten seconds after the last successful sync the vehicles cross the threshold, and say why (the core's clock is
    // moved on rather than waited for).
    core.clock.advance(10_500);
    const stale = await health();
    expect(stale.freshness.counts).toMatchObject({ fresh: 0, stale: 4 });
    expect(stale.reasons.map((r: { code: string }) => r.code)).toEqual(expect.arrayContaining(['vehicles_stale', 'all_connections_down', 'connection_failing']));
    const staleVehicles = (await core.http.request('GET', `/v1/workspaces/${ws}/vehicles?status=stale`, { token: key })).body.items;
    expect(staleVehicles).toHaveLength(4);
    expect(staleVehicles[0].freshness.reason).toMatchObject({ code: 'connection_failing', connectionId: connection.connectionId });

    const metrics = (await core.http.request('GET', '/metrics', { token: core.serviceToken })).text;
    expect(metrics).toContain(`fleetwire_workspace_vehicles{workspace_id="${ws}",status="stale"} 4`);
    expect(metrics).toContain(`fleetwire_connections{workspace_id="${ws}",transport="poll",status="failing"} 1`);
    expect(metrics).toMatch(new RegExp(`fleetwire_poll_lag_seconds\\{workspace_id="${ws}",connection_id="${connection.connectionId}"\\} \\d+`));

    // Back to the real clock (the one the database stamps syncs with), and the provider recovers.
    core.clock.reset();
    faults.endOutage();
    await pollNow('health-recovered');
    const recovered = await health();
    expect(recovered).toMatchObject({ status: 'ok', freshness: { counts: { fresh: 4, stale: 0 } } });
    expect(recovered.connections[0].status).toBe('ok');

    const all = (await core.http.admin('GET', '/v1/health')).body;
    expect(all.items.find((w: { workspaceId: string }) => w.workspaceId === ws)).toMatchObject({ status: 'ok' });
    expect(all.counts.ok + all.counts.degraded + all.counts.failing).toBe(all.items.length);
    expect((await core.http.request('GET', '/v1/health', { token: key })).status).toBe(403);
  }, 60_000);
});
