/**
 * The scheduled poll path end to end: scheduled events (idempotent, due rules), the poll runner against the
 * Samsara and Geotab simulators over HTTP into the store, failures mid-poll (a 500 on page 2, a database error
 * at commit) that lose nothing and duplicate nothing, and the error classes' effect on the connection.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putCutover, putTelematicsPolicy, createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { createGeotabPollAdapter } from '../../src/providers/geotab/adapter.ts';
import { startGeotabSimulator, type GeotabSimulator } from '../../src/sim/geotab/simulator.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { createSamsaraPollAdapter } from '../../src/providers/samsara/adapter.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { FaultInjector } from '../../src/sim/faults.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { countRows } from '../support/fleet.ts';
import { observePollAdapter } from '../support/observed-poll-adapter.ts';
import { connectSimulator, expectStoreMatchesGroundTruth, type SimulatedConnection } from '../support/simulated.ts';

let core: TestCore;
let clock = Date.now() - 30 * 60_000;
const now = () => clock;
const samsaraFaults = new FaultInjector();
const geotabFaults = new FaultInjector();
// One simulator account (and fleet) per test, so each test's ground truth is what its own connections were served.
const accountNames = ['events', 'due', 'legacy', 'disabled', 'poll', 'fault', 'commit', 'auth', 'limit', 'late', 'abandoned'] as const;
type AccountName = (typeof accountNames)[number];
const samsaraFleets = new Map(accountNames.map((name, i) => [name, new FleetModel({ seed: 100 + i, vehicles: 6, startMs: clock, timeScale: 5 })]));
const geotabFleets = new Map(accountNames.map((name, i) => [name, new FleetModel({ seed: 200 + i, vehicles: 6, startMs: clock, timeScale: 5 })]));
let samsara: RunningSimulator;
let geotab: GeotabSimulator;
/** Samsara's adapter, wrapped so a test can act between pages (queue a fault after page 1, say). */
const samsaraAdapter = observePollAdapter(createSamsaraPollAdapter({ timeoutMs: 2000 }) as unknown as PollAdapter);

beforeAll(async () => {
  samsara = await startSamsaraSimulator({
    accounts: accountNames.map((name) => ({ credentials: { apiToken: `sam-${name}` }, fleet: samsaraFleets.get(name)! })),
    now,
    pageSize: 25,
    faults: samsaraFaults,
  });
  geotab = await startGeotabSimulator({
    accounts: accountNames.map((name) => ({ credentials: { database: name, userName: 'ops', password: 'pw-good' }, fleet: geotabFleets.get(name)! })),
    now,
    faults: geotabFaults,
  });
  core = await startTestCore({
    polling: {
      adapters: new Map([
        ['samsara', samsaraAdapter.adapter],
        ['geotab', createGeotabPollAdapter({ timeoutMs: 2000, resultsLimit: 40 }) as unknown as PollAdapter],
      ]),
    },
  });
});
afterAll(async () => {
  await core.close();
  await samsara.stop();
  await geotab.stop();
});

async function depot(name: string) {
  const workspace = await createWorkspace(core.db, { name, policy: { ...defaultPolicy, pollIntervalSeconds: 30 } });
  return workspace.id;
}

async function connectSamsara(workspaceId: string, account: AccountName, bound: number, token = `sam-${account}`): Promise<SimulatedConnection> {
  return connectSimulator(core.db, core.secretKey, workspaceId, {
    provider: 'samsara',
    baseUrl: samsara.url,
    credentials: { apiToken: token },
    externalIds: samsaraFleets.get(account)!.vehicles.slice(0, bound).map((v) => v.samsaraId),
  });
}

async function connectGeotab(workspaceId: string, account: AccountName, bound: number): Promise<SimulatedConnection> {
  return connectSimulator(core.db, core.secretKey, workspaceId, {
    provider: 'geotab',
    baseUrl: geotab.url,
    credentials: { database: account, userName: 'ops', password: 'pw-good' },
    externalIds: geotabFleets.get(account)!.vehicles.slice(0, bound).map((v) => v.geotabId),
  });
}

const event = (detail: Record<string, unknown> = {}) => ({
  version: '0',
  id: randomUUID(),
  'detail-type': 'Scheduled Event',
  source: 'aws.scheduler',
  time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  resources: ['arn:aws:scheduler:eu-west-1:123456789012:schedule/default/fleetwire'],
  detail,
});

async function queuedJobs(workspaceId: string): Promise<number> {
  const { rows } = await core.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${core.database.jobSchema}.job WHERE name = 'workspace-poll' AND singleton_key = $1`,
    [workspaceId],
  );
  return rows[0]!.n;
}

async function connectionState(workspaceId: string, connectionId: string) {
  return (await core.http.admin('GET', `/v1/workspaces/${workspaceId}/connections/${connectionId}`)).body.pollState;
}

describe('scheduled events', () => {
  it('enqueues due workspaces once per event id; a redelivered id polls nothing', async () => {
    const ws = await depot('Events depot');
    await connectSamsara(ws, 'events', 1);
    const first = event({ workspaceId: ws });
    const answer = await core.http.service('POST', '/internal/v1/scheduled-events', first);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ eventId: first.id, duplicate: false, workspacesDue: 1 });
    expect(await queuedJobs(ws)).toBe(1);
    const again = await core.http.service('POST', '/internal/v1/scheduled-events', first);
    expect(again).toMatchObject({ status: 202, body: { eventId: first.id, duplicate: true, workspacesDue: 0 } });
    expect(await queuedJobs(ws)).toBe(1);
  });

  it('makes a workspace due only when enabled, cut over to core, with a poll connection, and its interval passed', async () => {
    const due = await depot('Due depot');
    await connectSamsara(due, 'due', 1);
    const legacy = await depot('Legacy depot');
    await connectSamsara(legacy, 'legacy', 1);
    await putCutover(core.db, legacy, 'legacy');
    const disabled = await depot('Disabled depot');
    await connectSamsara(disabled, 'disabled', 1);
    await putTelematicsPolicy(core.db, disabled, { ...defaultPolicy, enabled: false });
    const streamOnly = await depot('Stream-only depot');

    const check = async (ws: string) => (await core.http.service('POST', '/internal/v1/scheduled-events', event({ workspaceId: ws }))).body.workspacesDue;
    expect(await check(due)).toBe(1);
    expect(await check(legacy)).toBe(0);
    expect(await check(disabled)).toBe(0);
    expect(await check(streamOnly)).toBe(0);

    // A broadcast event (empty detail) respects the interval: `due` was enqueued a moment ago.
    await core.db.query(`UPDATE workspace_poll_schedule SET last_enqueued_at = now() WHERE workspace_id <> $1`, [due]);
    const broadcast = await core.http.service('POST', '/internal/v1/scheduled-events', event());
    expect(broadcast.body.workspacesDue).toBe(0);
    await core.db.query(`UPDATE workspace_poll_schedule SET last_enqueued_at = now() - interval '31 seconds' WHERE workspace_id = $1`, [due]);
    const later = await core.http.service('POST', '/internal/v1/scheduled-events', event());
    expect(later.body.workspacesDue).toBe(1);
  });

  it('refuses an envelope that is not an EventBridge event, and guards the route with the service token', async () => {
    const bad = await core.http.service('POST', '/internal/v1/scheduled-events', { id: 'x', detail: {} });
    expect(bad).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    const admin = await core.http.request('POST', '/internal/v1/scheduled-events', { token: core.adminToken, body: event() });
    expect(admin.status).toBe(403);
  });
});

describe('poll runner', () => {
  it('polls Samsara and Geotab into the store; unbound devices become unknown_device rejections; a second poll brings only what is new', async () => {
    const ws = await depot('Poll depot');
    const sam = await connectSamsara(ws, 'poll', 5);
    const geo = await connectGeotab(ws, 'poll', 5);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'manual-1' });

    const runs = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs`)).body.items;
    expect(runs.map((r: { status: string }) => r.status)).toEqual(['succeeded', 'succeeded']);
    const samRun = runs.find((r: { provider: string }) => r.provider === 'samsara');
    expect(samRun).toMatchObject({ triggerEventId: 'manual-1', errorClass: null });
    expect(samRun.providerRequests).toBeGreaterThanOrEqual(2);
    expect(samRun.readings.accepted).toBeGreaterThan(0);

    const samCheck = await expectStoreMatchesGroundTruth(core.db, ws, sam, samsara.groundTruth, 'sam-poll');
    const geoCheck = await expectStoreMatchesGroundTruth(core.db, ws, geo, geotab.groundTruth, 'poll');
    expect(samCheck.stored).toBeGreaterThan(20);
    expect(geoCheck.stored).toBeGreaterThan(20);

    // The sixth vehicle of each fleet is not bound: the operator sees it as unknown_device.
    const rejections = (await core.http.admin('GET', `/v1/workspaces/${ws}/rejections?reason=unknown_device`)).body.items;
    const unknown = new Set(rejections.map((r: { externalDeviceId: string }) => r.externalDeviceId));
    expect(unknown).toEqual(new Set([samsaraFleets.get('poll')!.vehicles[5]!.samsaraId, geotabFleets.get('poll')!.vehicles[5]!.geotabId]));

    const vehicles = (await core.http.admin('GET', `/v1/workspaces/${ws}/vehicles?limit=100`)).body.items;
    expect(vehicles).toHaveLength(10);
    for (const v of vehicles) expect(Date.now() - Date.parse(v.lastSyncedAt)).toBeLessThan(60_000);
    expect((await connectionState(ws, sam.connectionId)).lastSuccessAt).not.toBeNull();

    const historyBefore = await countRows(core.db, 'signal_history');
    clock += 5 * 60_000;
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'manual-2' });
    await expectStoreMatchesGroundTruth(core.db, ws, sam, samsara.groundTruth, 'sam-poll');
    await expectStoreMatchesGroundTruth(core.db, ws, geo, geotab.groundTruth, 'poll');
    const second = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=2`)).body.items;
    const newRows = (await countRows(core.db, 'signal_history')) - historyBefore;
    expect(newRows).toBeGreaterThan(0);
    const accepted = second.reduce((n: number, r: { readings: { accepted: number; late: number } }) => n + r.readings.accepted + r.readings.late, 0);
    expect(accepted).toBe(newRows);
  });

  it('loses nothing and duplicates nothing when page 2 answers 500s: the next poll resumes from the committed cursor', async () => {
    const ws = await depot('Fault depot');
    const sam = await connectSamsara(ws, 'fault', 6);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'warm-up' });
    clock += 5 * 60_000;
    samsaraAdapter.afterPage = (_page, n) => {
      if (n === 1) samsaraFaults.queue('server_error', 3);
    };
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'faulty' });
    samsaraAdapter.afterPage = undefined;
    const [failed] = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=1`)).body.items;
    expect(failed).toMatchObject({ status: 'failed', errorClass: 'transient', pages: 1 });
    const state = await connectionState(ws, sam.connectionId);
    expect(state).toMatchObject({ consecutiveFailures: 1, lastErrorClass: 'transient' });
    expect(Date.parse(state.nextPollAt)).toBeGreaterThan(Date.now());

    // The backoff has passed; the next poll picks up from page 2.
    await core.db.query('UPDATE connection_poll_states SET next_poll_at = NULL WHERE connection_id = $1', [sam.connectionId]);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'recovered' });
    expect((await connectionState(ws, sam.connectionId)).consecutiveFailures).toBe(0);
    await expectStoreMatchesGroundTruth(core.db, ws, sam, samsara.groundTruth, 'sam-fault');
  });

  it('loses nothing and duplicates nothing when the database fails at commit: the cursor stays with the data', async () => {
    const ws = await depot('Commit depot');
    const geo = await connectGeotab(ws, 'commit', 6);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'warm-up' });
    clock += 5 * 60_000;
    // The commit of page 2 fails inside the database: a trigger refuses the cursor update.
    await core.db.exec(`
      CREATE TABLE commit_faults (connection_id uuid PRIMARY KEY, pages_left int NOT NULL);
      CREATE FUNCTION fail_commit() RETURNS trigger AS $$
      BEGIN
        UPDATE commit_faults SET pages_left = pages_left - 1 WHERE connection_id = NEW.id;
        IF (SELECT pages_left FROM commit_faults WHERE connection_id = NEW.id) < 0 THEN
          RAISE EXCEPTION 'disk full (simulated)';
        END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql;
      CREATE TRIGGER fail_commit BEFORE UPDATE OF feed_cursor ON provider_connections
        FOR EACH ROW EXECUTE FUNCTION fail_commit();`);
    await core.db.query('INSERT INTO commit_faults VALUES ($1, 1)', [geo.connectionId]);
    const historyBefore = await countRows(core.db, 'signal_history');
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'failing-commit' });
    const [failed] = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=1`)).body.items;
    expect(failed).toMatchObject({ status: 'failed', errorClass: 'internal', pages: 1 });
    expect(failed.errorMessage).toMatch(/disk full/);
    expect(await countRows(core.db, 'signal_history')).toBeGreaterThan(historyBefore);

    await core.db.exec('DROP TRIGGER fail_commit ON provider_connections; DROP FUNCTION fail_commit(); DROP TABLE commit_faults;');
    await core.db.query('UPDATE connection_poll_states SET next_poll_at = NULL WHERE connection_id = $1', [geo.connectionId]);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'after-commit-failure' });
    await expectStoreMatchesGroundTruth(core.db, ws, geo, geotab.groundTruth, 'commit');
  });

  it('stops a connection whose credentials are refused, until they change; one failing connection does not hold up the others', async () => {
    const ws = await depot('Auth depot');
    const bad = await connectSamsara(ws, 'auth', 2, 'sam-wrong');
    const geo = await connectGeotab(ws, 'auth', 2);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'auth-1' });
    const runs = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs`)).body.items;
    expect(runs.find((r: { provider: string }) => r.provider === 'samsara')).toMatchObject({ status: 'failed', errorClass: 'auth' });
    expect(runs.find((r: { provider: string }) => r.provider === 'geotab')).toMatchObject({ status: 'succeeded' });
    expect(JSON.stringify(runs)).not.toContain('sam-wrong');
    expect((await connectionState(ws, bad.connectionId)).authFailedAt).not.toBeNull();

    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'auth-2' });
    const afterStop = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?connectionId=${bad.connectionId}`)).body.items;
    expect(afterStop).toHaveLength(1);

    const patched = await core.http.admin('PATCH', `/v1/workspaces/${ws}/connections/${bad.connectionId}`, { credentials: { apiToken: 'sam-auth' } });
    expect(patched.body.pollState.authFailedAt).toBeNull();
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'auth-3' });
    const [fixed] = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?connectionId=${bad.connectionId}&limit=1`)).body.items;
    expect(fixed.status).toBe('succeeded');
    expect(core.logs.join('\n')).not.toContain('sam-wrong');
    await expectStoreMatchesGroundTruth(core.db, ws, geo, geotab.groundTruth, 'auth');
  });

  it('waits out a short Retry-After within the run, and marks a connection rate limited when the limit persists', async () => {
    const ws = await depot('Limit depot');
    const sam = await connectSamsara(ws, 'limit', 2);
    samsaraFaults.queue('rate_limit', 2);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'limit-1' });
    const [ok] = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=1`)).body.items;
    expect(ok.status).toBe('succeeded');

    samsaraFaults.startOutage('rate_limit');
    try {
      await core.runner.runWorkspace({ workspaceId: ws, eventId: 'limit-2' });
    } finally {
      samsaraFaults.endOutage();
    }
    const [limited] = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=1`)).body.items;
    expect(limited).toMatchObject({ status: 'failed', errorClass: 'rate_limited' });
    const state = await connectionState(ws, sam.connectionId);
    expect(Date.parse(state.rateLimitedUntil)).toBeGreaterThan(Date.now() - 5000);
  });

  it('closes a run whose outcome was never recorded as failed, and shows the failure on its connection', async () => {
    const ws = await depot('Abandoned depot');
    const sam = await connectSamsara(ws, 'abandoned', 2);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'abandoned-1' });
    // A success twenty minutes ago, then a run ten minutes ago whose process died (or lost the database) before it
    // recorded anything; the connection is not due, so only the closing happens.
    await core.db.query(
      `UPDATE connection_poll_states SET last_success_at = now() - interval '20 minutes', next_poll_at = now() + interval '1 hour' WHERE workspace_id = $1`,
      [ws],
    );
    const running = `INSERT INTO poll_runs (workspace_id, connection_id, provider, runner, status, started_at)
                     VALUES ($1, $2, 'samsara', 'gone:1', 'running', now() - $3::interval) RETURNING id`;
    const [abandoned] = (await core.db.query<{ id: number }>(running, [ws, sam.connectionId, '10 minutes'])).rows;
    const [inFlight] = (await core.db.query<{ id: number }>(running, [ws, sam.connectionId, '5 seconds'])).rows;

    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'abandoned-2' });
    const runs: { id: number; status: string; errorClass: string | null; finishedAt: string | null }[] = (
      await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs`)
    ).body.items;
    expect(runs).toHaveLength(3);
    expect(runs.find((r) => r.id === abandoned!.id)).toMatchObject({ status: 'failed', errorClass: 'internal', finishedAt: expect.any(String) });
    // A run younger than its deadline may still be going: it is left alone.
    expect(runs.find((r) => r.id === inFlight!.id)).toMatchObject({ status: 'running', finishedAt: null });
    const state = await connectionState(ws, sam.connectionId);
    expect(state).toMatchObject({ lastErrorClass: 'internal', consecutiveFailures: 1 });
    expect(state.lastErrorMessage).toMatch(/without its outcome being recorded/);
  });

  it('does not poll a workspace that is in legacy mode by the time its job runs', async () => {
    const ws = await depot('Late legacy depot');
    await connectSamsara(ws, 'late', 1);
    await putCutover(core.db, ws, 'legacy');
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'legacy' });
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs`)).body.items).toEqual([]);
  });
});
