/**
 * Health that tells the truth (docs/API.md, "Health"): a scheduler that stopped is `scheduler_silent` after two poll
 * intervals and recovers with the next event; a disabled workspace is `disabled`, never silent, and its vehicles turn
 * no freshness events; a workspace in legacy cutover shows its poll connections owned by the legacy poller with its
 * freshness; a stream connection with some sockets open is `degraded` with counts, and only the vehicle whose own
 * socket is down loses its sync; every vehicle that is behind names its cause from the closed set. The clock health is
 * judged by is the core's injected one, moved on rather than waited for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepTransitions } from '../../src/core/events/transition-sweeper.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { processScheduledEvent } from '../../src/core/polling/scheduled-events.ts';
import { createTicker } from '../../src/core/polling/ticker.ts';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createVehicle } from '../../src/core/registry/vehicles.ts';
import { createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { acquireStreamLeases } from '../../src/core/streams/stream-store.ts';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logging.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { startTessieSimulator } from '../../src/sim/tessie/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { connectStreamProvider, pastFastClock, startTestStream, until } from '../support/stream.ts';

let core: TestCore;
let adminKeyless: (path: string) => Promise<any>;

beforeAll(async () => {
  core = await startTestCore();
  adminKeyless = async (path) => (await core.http.admin('GET', path)).body;
});
afterAll(async () => {
  await core.close();
});

const policy = { ...defaultPolicy, pollIntervalSeconds: 60, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600 };
let eventNumber = 0;
const scheduledEvent = (detail: Record<string, unknown> = {}) => ({
  version: '0',
  id: `health-truth-${(eventNumber += 1)}`,
  'detail-type': 'Scheduled Event',
  source: 'aws.scheduler',
  time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  detail,
});
const postEvent = async (detail: Record<string, unknown> = {}) => {
  const answer = await core.http.service('POST', '/internal/v1/scheduled-events', scheduledEvent(detail));
  expect(answer.status).toBe(202);
};
const health = (ws: string) => adminKeyless(`/v1/workspaces/${ws}/health`);
const vehicles = async (ws: string) => new Map<string, any>((await adminKeyless(`/v1/workspaces/${ws}/vehicles?limit=100`)).items.map((v: { id: string }) => [v.id, v]));
const reasonOf = async (ws: string, vehicleId: string) => (await vehicles(ws)).get(vehicleId).freshness.statusReason;

/** Readings accepted for every vehicle of the fleet, observed `observedAgoMs` before now: they sync the vehicles now. */
async function report(fleet: TestFleet, observedAgoMs = 1000, source?: 'poll' | 'stream' | 'legacy_poll'): Promise<void> {
  const at = Date.now() - observedAgoMs;
  const outcome = await ingestBatch(
    core.db,
    fleet.vehicles.map((_, i) => update(fleet, [{ signal: 'soc_pct', value: 50 + i, observedAt: at }], { vehicle: i, ...(source ? { source } : {}) })),
  );
  expect(outcome.counts.accepted).toBe(fleet.vehicles.length);
}

describe('scheduler health', () => {
  it('turns to scheduler_silent when no scheduled event came for two poll intervals, and back with the next one', async () => {
    core.clock.reset();
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 3, policy, name: 'Silent depot' });
    await postEvent();
    await report(fleet);
    const alive = await health(fleet.workspaceId);
    expect(alive.scheduler).toMatchObject({ status: 'ok', silentAfterSeconds: 120 });
    const lastScheduledAt = alive.scheduler.lastScheduledAt;
    expect(Date.parse(lastScheduledAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(alive.connections[0]).toMatchObject({ status: 'ok', owner: 'core', lastScheduledAt });
    expect(alive.reasons.map((r: { code: string }) => r.code)).not.toContain('scheduler_silent');

    // The scheduler stops. Two poll intervals on, the workspace and its poll connection say so, with the last event.
    const at = (sinceEventMs: number) => core.clock.advance(Date.parse(lastScheduledAt) + sinceEventMs - core.clock.now());
    at(115_000);
    expect((await health(fleet.workspaceId)).scheduler.status).toBe('ok');
    at(121_000);
    const silent = await health(fleet.workspaceId);
    expect(silent.scheduler).toEqual({ status: 'scheduler_silent', lastScheduledAt, silentAfterSeconds: 120 });
    const said = silent.reasons.find((r: { code: string }) => r.code === 'scheduler_silent');
    expect(said.detail).toContain(lastScheduledAt);
    // Said once for the workspace, not again for each of its poll connections.
    expect(silent.reasons.map((r: { code: string }) => r.code)).not.toContain('connection_scheduler_silent');
    expect(silent.connections[0]).toMatchObject({ status: 'scheduler_silent', nextAttemptAt: null, lastScheduledAt });
    expect(silent.connections[0].detail).toContain(lastScheduledAt);
    // Its only connection polls nothing: the workspace is failing, not ok.
    expect(silent.status).toBe('failing');
    const fleetHealth = await adminKeyless('/v1/health');
    expect(fleetHealth.items.find((w: { workspaceId: string }) => w.workspaceId === fleet.workspaceId).status).toBe('failing');

    // Past the freshness threshold its vehicles are stale, and say why.
    at(321_000);
    const stale = await health(fleet.workspaceId);
    expect(stale.freshness.counts.stale).toBe(3);
    expect(stale.freshness.byReason).toEqual({ scheduler_silent: 3 });
    const reason = await reasonOf(fleet.workspaceId, fleet.vehicles[0]!.id);
    expect(reason).toMatchObject({ code: 'scheduler_silent', connectionId: fleet.connectionId, errorClass: null });
    expect(reason.detail).toContain(lastScheduledAt);

    // Events come again: the scheduler is alive (the vehicles stay stale until a poll confirms them).
    await postEvent();
    const back = await health(fleet.workspaceId);
    expect(back.scheduler.status).toBe('ok');
    expect(Date.parse(back.scheduler.lastScheduledAt)).toBeGreaterThan(Date.parse(lastScheduledAt) + 300_000);
    expect(back.connections[0].status).toBe('ok');
    expect(back.reasons.map((r: { code: string }) => r.code)).not.toContain('scheduler_silent');
    core.clock.reset();
  });

  it('keeps one row per workspace, moved at most every tenth of a poll interval, by events and by the embedded ticker alike', async () => {
    core.clock.reset();
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, policy, name: 'Marked depot' });
    const mark = async () =>
      (await core.db.query<{ last_event_id: string; last_source: string; n: number }>(
        'SELECT last_event_id, last_source, count(*) OVER ()::int AS n FROM workspace_scheduler_marks WHERE workspace_id = $1',
        [fleet.workspaceId],
      )).rows;
    const start = Date.now();
    const first = scheduledEvent();
    await processScheduledEvent(core.db, core.jobs, first, start);
    // Within 6 s (a tenth of 60 s) the row is left alone; a redelivered id counts for nothing.
    await processScheduledEvent(core.db, core.jobs, scheduledEvent(), start + 5000);
    await processScheduledEvent(core.db, core.jobs, first, start + 30_000);
    expect(await mark()).toEqual([{ last_event_id: first.id, last_source: 'aws.scheduler', n: 1 }]);
    const later = scheduledEvent({ workspaceId: fleet.workspaceId });
    await processScheduledEvent(core.db, core.jobs, later, start + 7000);
    expect(await mark()).toEqual([{ last_event_id: later.id, last_source: 'aws.scheduler', n: 1 }]);

    // The embedded ticker goes through the same processor: its first tick is at start.
    let ticked = 0;
    const tickAt = start + 20_000;
    const ticker = createTicker({
      intervalMs: 3_600_000,
      clock: () => tickAt,
      onTick: async (event) => {
        await processScheduledEvent(core.db, core.jobs, event, tickAt);
        ticked += 1;
      },
      onError: (error) => {
        throw error;
      },
    });
    ticker.start();
    await ticker.stop();
    expect(ticked).toBe(1);
    expect((await mark())[0]).toMatchObject({ last_source: 'fleetwire.ticker', n: 1 });
    const { rows } = await core.db.query<{ at: Date }>('SELECT last_event_at AS at FROM workspace_scheduler_marks WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(rows[0]!.at.getTime()).toBe(tickAt);
  });

  it('shows a disabled workspace as disabled, never silent; the scheduler and the transition sweeper skip it', async () => {
    core.clock.reset();
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, policy, name: 'Closed depot' });
    await report(fleet);
    await sweepTransitions(core.db, Date.now());
    expect((await core.http.admin('PATCH', `/v1/workspaces/${fleet.workspaceId}`, { enabled: false })).status).toBe(200);
    await postEvent();
    const { rowCount } = await core.db.query('SELECT 1 FROM workspace_scheduler_marks WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(rowCount).toBe(0);

    core.clock.advance(3_600_000);
    const off = await health(fleet.workspaceId);
    expect(off).toMatchObject({ status: 'disabled', scheduler: { status: 'disabled' }, reasons: [{ code: 'telematics_disabled' }] });
    expect(off.connections.map((c: { status: string }) => c.status)).toEqual(['disabled']);
    expect(off.freshness.byReason).toEqual({ disabled: 2 });
    expect(await reasonOf(fleet.workspaceId, fleet.vehicles[0]!.id)).toMatchObject({ code: 'disabled' });

    // An hour on, its vehicles are past every threshold, yet the sweeper tells nothing of them or of its connection.
    await sweepTransitions(core.db, core.clock.now());
    const { rows } = await core.db.query<{ type: string }>('SELECT type FROM events WHERE workspace_id = $1 AND type = ANY($2::text[])', [
      fleet.workspaceId,
      ['fleetwire.vehicle.freshness.changed', 'fleetwire.connection.health.changed'],
    ]);
    expect(rows.map((r) => r.type)).toEqual([]);
    core.clock.reset();
  });
});

describe('legacy ownership', () => {
  it("shows a legacy workspace's poll connection as the legacy poller's, with its freshness, and its lag as the vehicles' reason", async () => {
    core.clock.reset();
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, policy, cutover: 'legacy', name: 'Legacy depot' });
    const before = await health(fleet.workspaceId);
    expect(before.connections[0]).toMatchObject({ owner: 'legacy_poller', status: 'legacy_poller_behind', lastSuccessAt: null, nextAttemptAt: null });
    expect(before.connections[0].detail).toContain('no update of it has been accepted yet');

    await report(fleet, 1000, 'legacy_poll');
    const { rows } = await core.db.query<{ at: Date }>(`SELECT max(updated_at) AS at FROM signal_snapshot WHERE workspace_id = $1 AND source = 'legacy_poll'`, [fleet.workspaceId]);
    const acceptedAt = rows[0]!.at.toISOString();
    // Two poll intervals without a scheduled event: core polls nothing here, so the scheduler is not its concern.
    core.clock.advance(150_000);
    const owned = await health(fleet.workspaceId);
    expect(owned).toMatchObject({ status: 'ok', scheduler: { status: 'not_used' }, cutover: { mode: 'legacy' } });
    expect(owned.connections[0]).toMatchObject({ owner: 'legacy_poller', status: 'ok', lastSuccessAt: acceptedAt, nextAttemptAt: null, lastScheduledAt: null });
    expect(owned.connections[0].detail).toBe(`owned by the legacy poller (cutover legacy); its last update was accepted at ${acceptedAt}`);

    // The legacy poller stops: past the freshness threshold it is behind, and so are its vehicles.
    core.clock.advance(151_000);
    const behind = await health(fleet.workspaceId);
    expect(behind.connections[0].status).toBe('legacy_poller_behind');
    expect(behind.reasons.map((r: { code: string }) => r.code)).toContain('connection_legacy_poller_behind');
    expect(behind.freshness.byReason).toEqual({ legacy_poller_behind: 2 });
    expect(await reasonOf(fleet.workspaceId, fleet.vehicles[1]!.id)).toMatchObject({ code: 'legacy_poller_behind', connectionId: fleet.connectionId });
    core.clock.reset();
  });
});

describe('stream sockets', () => {
  it('is degraded with counts when some per-VIN sockets are open; only the vehicle whose socket is down loses its sync', async () => {
    core.clock.reset();
    const ws = (await createWorkspace(core.db, { name: 'Tessie depot', policy })).id;
    const connection = await createConnection(core.db, core.secretKey, ws, { provider: 'tessie', transport: 'stream', baseUrl: 'http://127.0.0.1:1', credentials: { accessToken: 'tessie-token' } });
    const vins = ['5YJ3E1EA0001', '5YJ3E1EA0002', '5YJ3E1EA0003'];
    const ids: string[] = [];
    for (const vin of vins) ids.push(await createVehicle(core.db, ws, { name: vin, vin, devices: [{ connectionId: connection.id, externalId: vin }] }));
    const fleet: TestFleet = { workspaceId: ws, connectionId: connection.id, provider: 'tessie', vehicles: vins.map((vin, i) => ({ id: ids[i]!, externalId: vin })) };
    await report(fleet);
    // Their own last ingest is long past: what keeps them in sync now is the live stream.
    await core.db.query(`UPDATE vehicles SET last_synced_at = now() - interval '10 minutes' WHERE workspace_id = $1`, [ws]);
    const holder = 'health-truth-stream';
    await acquireStreamLeases(core.db, core.secretKey, { holder, wanted: [connection.id], release: [], leaving: false }, 600);
    const status = (over: Record<string, unknown>) => {
      const now = new Date().toISOString();
      return {
        connectionId: connection.id, connected: false, sockets: 3, socketsOpen: 2, lastMessageAt: now, lastHeartbeatAt: now, connectedSince: null,
        reconnects: 1, readingsIn: 3, delivered: 3, coalesced: 0, dropped: 0, buffered: 0, badFrames: 0, deadLettered: 0,
        lastErrorClass: 'auth', lastError: 'the provider refused the websocket upgrade with HTTP 403', lastErrorAt: now, nextReconnectAt: null, ...over,
      };
    };
    const send = async (over: Record<string, unknown>) => {
      const answer = await core.http.service('POST', '/internal/v1/stream-status', { holder, connections: [status(over)] });
      expect(answer.body).toEqual({ recorded: 1 });
    };

    // One VIN refused (Tessie answers 403 for a vehicle the token may not read): that vehicle's trouble only.
    await send({ devicesDown: { [vins[2]!]: 'auth' } });
    const degraded = await health(ws);
    expect(degraded.connections[0]).toMatchObject({ status: 'degraded', sockets: { connected: 2, expected: 3 }, owner: 'core' });
    expect(degraded.connections[0].detail).toContain('2 of 3 sockets connected');
    expect(degraded.status).toBe('degraded');
    expect(degraded.reasons.map((r: { code: string }) => r.code)).toEqual(['connection_degraded', 'vehicles_stale']);
    expect(degraded.freshness.counts).toMatchObject({ fresh: 2, stale: 1 });
    const byId = await vehicles(ws);
    expect(byId.get(ids[0]!).freshness).toMatchObject({ status: 'fresh', statusReason: null });
    expect(byId.get(ids[2]!).freshness).toMatchObject({ status: 'stale', statusReason: { code: 'auth_failed', connectionId: connection.id, errorClass: 'auth' } });

    // The socket drops for another cause: the vehicle is disconnected, with the class.
    await send({ devicesDown: { [vins[2]!]: 'transient' }, lastErrorClass: 'transient' });
    expect(await reasonOf(ws, ids[2]!)).toMatchObject({ code: 'vehicle_disconnected', errorClass: 'transient', detail: 'its own socket is not open (last error: transient)' });

    // Every socket down and refused: the connection itself is auth_failed, and every vehicle says so.
    await send({ socketsOpen: 0, devicesDown: Object.fromEntries(vins.map((vin) => [vin, 'auth'])) });
    const refused = await health(ws);
    expect(refused.connections[0]).toMatchObject({ status: 'auth_failed', sockets: { connected: 0, expected: 3 } });
    expect(refused.freshness.byReason).toEqual({ auth_failed: 3 });

    // All open again: ok, and every vehicle in sync.
    await send({ connected: true, socketsOpen: 3, devicesDown: {}, lastErrorClass: null, lastError: null, lastErrorAt: null });
    const ok = await health(ws);
    expect(ok).toMatchObject({ status: 'ok', freshness: { counts: { fresh: 3, stale: 0 }, byReason: {} } });
    expect(ok.connections[0]).toMatchObject({ status: 'ok', sockets: { connected: 3, expected: 3 } });
  });
});

describe('vehicle reasons', () => {
  const pollState = (connectionId: string, workspaceId: string, state: string) =>
    core.db.query(
      `INSERT INTO connection_poll_states (workspace_id, connection_id, last_attempt_at, last_success_at, last_error_at, last_error_class,
              last_error_message, consecutive_failures, rate_limited_until, auth_failed_at)
       SELECT $1::uuid, $2::uuid, now(), now() - interval '1 hour', now(), s.class, 'test', s.failures, s.limited, s.auth
         FROM (SELECT * FROM (VALUES ('transient', 3, NULL::timestamptz, NULL::timestamptz, 'failing'),
                                     ('auth', 1, NULL, now(), 'auth'),
                                     ('rate_limited', 1, now() + interval '1 hour', NULL, 'limited'),
                                     ('transient', 1, NULL, NULL, 'once')) AS v(class, failures, limited, auth, name)
                WHERE name = $3) s
       ON CONFLICT (workspace_id, connection_id) DO UPDATE
          SET last_error_class = excluded.last_error_class, consecutive_failures = excluded.consecutive_failures,
              rate_limited_until = excluded.rate_limited_until, auth_failed_at = excluded.auth_failed_at,
              last_error_at = excluded.last_error_at, last_success_at = excluded.last_success_at`,
      [workspaceId, connectionId, state],
    );

  it("names a stale vehicle's cause from its connection: failing with the class, auth, rate limited, a last poll that failed", async () => {
    core.clock.reset();
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, policy, name: 'Troubled depot' });
    await report(fleet);
    await core.db.query(`UPDATE vehicles SET last_synced_at = now() - interval '10 minutes' WHERE workspace_id = $1`, [fleet.workspaceId]);
    const expected: [string, Record<string, unknown>][] = [
      ['failing', { code: 'connection_failing', errorClass: 'transient' }],
      ['auth', { code: 'auth_failed', errorClass: 'auth' }],
      ['limited', { code: 'rate_limited', errorClass: 'rate_limited' }],
      ['once', { code: 'connection_failing', errorClass: 'transient', detail: 'Samsara: its last poll failed (transient)' }],
    ];
    for (const [state, reason] of expected) {
      await pollState(fleet.connectionId, fleet.workspaceId, state);
      expect(await reasonOf(fleet.workspaceId, fleet.vehicles[0]!.id), state).toMatchObject({ ...reason, connectionId: fleet.connectionId });
      expect((await health(fleet.workspaceId)).freshness.byReason, state).toEqual({ [reason.code as string]: 1 });
    }
  });

  it('names a silent or never-reported vehicle’s cause from what it said: asleep, offline, tracker battery low, or nothing', async () => {
    core.clock.reset();
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 5, policy, name: 'Quiet depot' });
    const twoHoursAgo = Date.now() - 7_200_000;
    const said = [
      [{ signal: 'connectivity_state', value: 'asleep', observedAt: twoHoursAgo }],
      [{ signal: 'connectivity_state', value: 'offline', observedAt: twoHoursAgo }],
      [{ signal: 'tracker_battery_pct', value: 9, observedAt: twoHoursAgo }],
      [{ signal: 'soc_pct', value: 40, observedAt: twoHoursAgo }, { signal: 'tracker_battery_pct', value: 80, observedAt: twoHoursAgo }],
    ];
    const outcome = await ingestBatch(core.db, said.map((readings, i) => update(fleet, readings, { vehicle: i })));
    expect(outcome.counts.accepted).toBe(5);
    const unbound = await createVehicle(core.db, fleet.workspaceId, { name: 'Spare', devices: [] });
    const byId = await vehicles(fleet.workspaceId);
    const reason = (i: number) => byId.get(fleet.vehicles[i]!.id).freshness;
    expect(reason(0)).toMatchObject({ status: 'silent', statusReason: { code: 'vehicle_asleep', connectionId: fleet.connectionId } });
    expect(reason(1)).toMatchObject({ status: 'silent', statusReason: { code: 'vehicle_disconnected', detail: 'the vehicle reported that it went offline' } });
    expect(reason(2)).toMatchObject({ status: 'silent', statusReason: { code: 'tracker_battery_low', detail: "the tracker's own battery was at 9 % when it last reported" } });
    expect(reason(3)).toMatchObject({ status: 'silent', statusReason: { code: 'device_not_reporting', connectionId: fleet.connectionId } });
    expect(reason(4)).toMatchObject({ status: 'never', statusReason: { code: 'device_not_reporting', connectionId: fleet.connectionId } });
    expect(byId.get(unbound).freshness).toMatchObject({ status: 'never', statusReason: { code: 'no_devices', connectionId: null } });
    // The old field is kept as it was.
    expect(reason(1).reason).toMatchObject({ code: 'vehicle_offline' });

    const counted = await health(fleet.workspaceId);
    expect(counted.freshness.byReason).toEqual({ vehicle_asleep: 1, vehicle_disconnected: 1, tracker_battery_low: 1, device_not_reporting: 2, no_devices: 1 });
    // A fresh vehicle has no reason.
    await report({ ...fleet, vehicles: [fleet.vehicles[3]!] });
    expect((await vehicles(fleet.workspaceId)).get(fleet.vehicles[3]!.id).freshness).toMatchObject({ status: 'fresh', statusReason: null });
  });
});

describe('one refused VIN over the stream runtime', () => {
  const quiet = createLogger({ level: 'error', name: 'health-truth', destination: new Writable({ write: (_c, _e, done) => done() }) });

  it('leaves the connection degraded, 2 of 3, and only that vehicle disconnected with the refusal', async () => {
    core.clock.reset();
    const clock = pastFastClock();
    const ws = (await createWorkspace(core.db, { name: 'Refusing depot', policy })).id;
    const model = new FleetModel({ seed: 913, vehicles: 2, startMs: clock.startMs, timeScale: 5 });
    const sim = await startTessieSimulator({ accounts: [{ credentials: { accessToken: 'tessie-refusing' }, fleet: model }], now: clock.now, tickMs: 50 });
    const connection = await connectStreamProvider(core.db, core.secretKey, ws, { provider: 'tessie', baseUrl: sim.url, token: 'tessie-refusing', vehicles: model.vehicles });
    // A VIN the account does not share: the simulator answers its upgrade 404, as a socket of a VIN it does not serve.
    const refusedVin = '5YJ3E1EA7KF000913';
    const refused = await createVehicle(core.db, ws, { name: 'Not shared', vin: refusedVin, devices: [{ connectionId: connection.connectionId, externalId: refusedVin }] });
    const runtime = startTestStream({ coreUrl: core.url, serviceToken: core.serviceToken, logger: quiet });
    try {
      const degraded = await until('the connection degraded at core, its vehicles reporting', async () => {
        const answer = await health(ws);
        return answer.connections[0]?.status === 'degraded' && answer.freshness.counts.fresh === 2 ? answer : undefined;
      });
      expect(degraded.connections[0]).toMatchObject({ sockets: { connected: 2, expected: 3 }, lastError: { class: 'permanent' } });
      expect(degraded.freshness.counts).toEqual({ fresh: 2, stale: 0, silent: 0, never: 1 });
      expect(degraded.freshness.byReason).toEqual({ vehicle_disconnected: 1 });
      const byId = await vehicles(ws);
      expect(byId.get(refused).freshness.statusReason).toMatchObject({ code: 'vehicle_disconnected', connectionId: connection.connectionId, errorClass: 'permanent' });
      for (const id of connection.vehicles.values()) expect(byId.get(id).freshness).toMatchObject({ status: 'fresh', statusReason: null });
    } finally {
      await runtime.stop();
      await sim.stop();
      await core.db.query('UPDATE provider_connections SET enabled = false WHERE id = $1', [connection.connectionId]);
    }
  }, 30_000);
});
