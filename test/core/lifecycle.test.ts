/**
 * Workspace and vehicle lifecycle over HTTP: renaming and disabling a workspace (one switch that polling, streams,
 * ingest and health all obey); deleting one, after which no table with a `workspace_id` column holds a row of it
 * (the tables are read from the catalog, so a table added without delete handling fails here); renaming, moving and
 * deleting vehicles; names that cannot be blank; VINs unique per workspace, and the migration that makes them so
 * refusing duplicates already stored.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPglite, type Database } from '../../src/core/db/database.ts';
import { listMigrations, migrate } from '../../src/core/db/migrate.ts';
import { runRetention } from '../../src/core/maintenance/retention.ts';
import { sweepTransitions } from '../../src/core/events/transition-sweeper.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { pollAdapters } from '../../src/providers/registry.ts';
import { backend, createTestDatabase } from '../support/database.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { update, type TestFleet } from '../support/fleet.ts';

/** A ceiling for a test doing a tenant's worth of work over HTTP, generous for a machine shared with other work. */
const underLoad = 120_000;

let core: TestCore;
let receiver: Server;
let receiverUrl: string;

/** A Samsara connection that reports one odometer reading for each bound device, and nothing else. */
const odometerAdapter: PollAdapter = {
  contract: pollAdapters.get('samsara')!.contract,
  async *poll(context) {
    const observedAt = new Date(Date.now() - 30_000).toISOString();
    yield {
      devices: context.boundDevices.map((externalDeviceId) => ({ externalDeviceId, readings: [{ signal: 'odometer_km', value: 1200.5, observedAt }] })),
      cursor: { observedAt },
      requests: 1,
    };
  },
};

beforeAll(async () => {
  receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  core = await startTestCore({ polling: { adapters: new Map([['samsara', odometerAdapter]]) } });
});
afterAll(async () => {
  await core.close();
  await new Promise((resolve) => receiver.close(resolve));
});

const scheduledEvent = (workspaceId: string) => ({
  version: '0',
  id: randomUUID(),
  'detail-type': 'Scheduled Event',
  source: 'aws.scheduler',
  time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  detail: { workspaceId },
});

const streamStatus = (holder: string, connectionId: string) => ({
  holder,
  connections: [
    {
      connectionId, connected: true, sockets: 1, socketsOpen: 1, lastMessageAt: null, lastHeartbeatAt: new Date().toISOString(),
      connectedSince: null, reconnects: 0, readingsIn: 0, delivered: 0, coalesced: 0, dropped: 0, buffered: 0, badFrames: 0,
      deadLettered: 0, lastErrorClass: null, lastError: null, lastErrorAt: null, nextReconnectAt: null,
    },
  ],
});

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Tenant {
  fleet: TestFleet;
  streamConnectionId: string;
  key: string;
  holder: string;
}

/**
 * A workspace with something in every table a tenant fills, each through the path that fills it in production:
 * the admin API, ingest, a poll run, a scheduled event, a stream process's lease and report, the transition
 * sweeper and a webhook delivery.
 */
async function populatedTenant(name: string): Promise<Tenant> {
  const ws = (await core.http.admin('POST', '/v1/workspaces', { name })).body.id as string;
  const poll = (await core.http.admin('POST', `/v1/workspaces/${ws}/connections`, { provider: 'samsara', transport: 'poll', credentials: { apiToken: `sam-${name}` } })).body;
  const stream = (await core.http.admin('POST', `/v1/workspaces/${ws}/connections`, { provider: 'traccar', transport: 'stream', baseUrl: 'http://127.0.0.1:1', credentials: { token: `tr-${name}` } })).body;
  const vehicle = await core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, {
    name: `${name} van`,
    vin: `VIN-${name}`,
    devices: [{ connectionId: poll.id, externalId: 'dev-0' }, { connectionId: stream.id, externalId: 'trk-0' }],
  });
  expect(vehicle.status).toBe(201);
  const fleet: TestFleet = { workspaceId: ws, connectionId: poll.id, provider: 'samsara', vehicles: [{ id: vehicle.body.id, externalId: 'dev-0' }] };
  const key = (await core.http.admin('POST', `/v1/workspaces/${ws}/api-keys`, { name: 'board' })).body.key as string;
  expect((await core.http.admin('POST', `/v1/workspaces/${ws}/webhooks`, { url: receiverUrl, types: ['fleetwire.vehicle.state.changed'] })).status).toBe(201);

  const at = Date.now() - 60_000;
  const ingested = await core.http.service('POST', '/internal/v1/ingest', {
    updates: [
      {
        ...update(fleet, [{ signal: 'soc_pct', value: 64, observedAt: at }, { signal: 'no_such_signal', value: 1, observedAt: at }]),
        chargingSessions: [
          { externalId: `cs-${name}`, startedAt: new Date(at - 3_600_000).toISOString(), endedAt: new Date(at).toISOString(), startSocPct: 20, endSocPct: 64, energyKwh: 30, peakPowerKw: 50, location: null },
        ],
      },
      // A device nobody bound: a discovered device of the tenant.
      update(fleet, [{ signal: 'soc_pct', value: 12, observedAt: at }], { externalDeviceId: `stranger-${name}` }),
    ],
  });
  expect(ingested.body.results[0].status).toBe('processed');
  expect(ingested.body.results[1].reason).toBe('unknown_device');
  await core.runner.runWorkspace({ workspaceId: ws, eventId: `poll-${name}` });
  expect((await core.http.service('POST', '/internal/v1/scheduled-events', scheduledEvent(ws))).status).toBe(202);

  const holder = `holder-${name.toLowerCase().replace(/\W/g, '')}`;
  const leased = await core.http.service('POST', '/internal/v1/stream-leases', { holder, wanted: [stream.id] });
  expect(leased.body.granted.map((g: { id: string }) => g.id)).toEqual([stream.id]);
  expect((await core.http.service('POST', '/internal/v1/stream-status', streamStatus(holder, stream.id))).body).toEqual({ recorded: 1 });

  // A cutover there and back through shadow, where both pollers' readings are kept for parity: events of the
  // workspace's own subject with its counter row (event_subjects), transitions, shadow readings and parity hours.
  expect((await core.http.admin('PUT', `/v1/workspaces/${ws}/cutover`, { mode: 'shadow' })).status).toBe(200);
  const both = (source: 'poll' | 'legacy_poll') => update(fleet, [{ signal: 'soc_pct', value: 63, observedAt: at + 1000 }], { source });
  const paired = await core.http.service('POST', '/internal/v1/ingest', { updates: [both('legacy_poll'), both('poll')] });
  expect(paired.body.results.map((r: { readings: { status: string }[] }) => r.readings[0]!.status)).toEqual(['accepted', 'shadowed']);
  const forced = { mode: 'core', force: true, reason: 'the test has no legacy poller to match' };
  expect((await core.http.admin('PUT', `/v1/workspaces/${ws}/cutover`, forced)).status).toBe(200);

  await sweepTransitions(core.db, Date.now());
  await core.events.flush();
  await waitFor('a webhook delivery', async () => (await rowsOf('webhook_deliveries', ws)) > 0);
  return { fleet, streamConnectionId: stream.id, key, holder };
}

/** Deletes a tenant a test is done with: on PGlite every webhook and sweep of the file's core shares one session. */
async function retire(workspaceId: string): Promise<void> {
  expect((await core.http.admin('DELETE', `/v1/workspaces/${workspaceId}`)).status).toBe(204);
}

async function rowsOf(table: string, workspaceId: string): Promise<number> {
  const { rows } = await core.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE workspace_id = $1`, [workspaceId]);
  return rows[0]!.n;
}

/** Every table of the schema with a `workspace_id` column, as the catalog has them; history's partitions marked. */
async function tablesWithWorkspaceId(): Promise<{ table: string; partition: boolean }[]> {
  const { rows } = await core.db.query<{ table_name: string; partition: boolean }>(
    `SELECT c.table_name, k.relispartition AS partition
       FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
       JOIN pg_class k ON k.oid = to_regclass(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))
      WHERE c.column_name = 'workspace_id' AND c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name`,
  );
  return rows.map((row) => ({ table: row.table_name, partition: row.partition }));
}

async function countsOf(workspaceId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const { table } of await tablesWithWorkspaceId()) counts[table] = await rowsOf(table, workspaceId);
  return counts;
}

describe('deleting a workspace', { timeout: underLoad }, () => {
  it('leaves no row of it in any table with a workspace_id, and nothing of another workspace goes', async () => {
    const doomed = await populatedTenant('Doomed');
    const kept = await populatedTenant('Kept');
    const ws = doomed.fleet.workspaceId;

    const tables = await tablesWithWorkspaceId();
    expect(tables.map((t) => t.table)).toEqual(expect.arrayContaining(['vehicles', 'signal_history', 'events', 'api_keys']));
    for (const { table, partition } of tables) {
      if (partition) continue;
      // Else the check after the delete proves nothing for this table: give the tenant above a row of it.
      expect(await rowsOf(table, ws), `${table} holds no row of the tenant before the delete`).toBeGreaterThan(0);
    }
    const keptBefore = await countsOf(kept.fleet.workspaceId);

    expect((await core.http.request('DELETE', `/v1/workspaces/${ws}`, { token: kept.key })).status).toBe(403);
    const deleted = await core.http.admin('DELETE', `/v1/workspaces/${ws}`);
    expect(deleted.status).toBe(204);

    const left = Object.entries(await countsOf(ws)).filter(([, n]) => n > 0);
    expect(left, 'tables still holding rows of the deleted workspace').toEqual([]);
    expect((await core.db.query('SELECT 1 FROM workspaces WHERE id = $1', [ws])).rowCount).toBe(0);
    // Deliveries to the kept tenant's receiver go on meanwhile (a retry, a redelivery): its attempts only grow.
    const { webhook_deliveries: keptDeliveries, ...keptAfter } = await countsOf(kept.fleet.workspaceId);
    const { webhook_deliveries: keptDeliveriesBefore, ...keptRowsBefore } = keptBefore;
    expect(keptAfter).toEqual(keptRowsBefore);
    expect(keptDeliveries).toBeGreaterThanOrEqual(keptDeliveriesBefore!);

    expect(await core.http.admin('DELETE', `/v1/workspaces/${ws}`)).toMatchObject({ status: 404, body: { code: 'workspace_not_found' } });
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}`)).status).toBe(404);
    expect((await core.http.admin('GET', '/v1/workspaces')).body.items.map((w: { id: string }) => w.id)).not.toContain(ws);
    expect(await core.http.request('GET', `/v1/workspaces/${ws}`, { token: doomed.key })).toMatchObject({ status: 401, body: { code: 'invalid_token' } });
    expect((await core.http.request('GET', `/v1/workspaces/${kept.fleet.workspaceId}/vehicles`, { token: kept.key })).body.items).toHaveLength(1);
    await retire(kept.fleet.workspaceId);
  });

  it('answers a stream process that held one of its connections, does nothing for a queued poll, and refuses its late updates', async () => {
    const tenant = await populatedTenant('Leased');
    const ws = tenant.fleet.workspaceId;
    expect((await core.http.admin('DELETE', `/v1/workspaces/${ws}`)).status).toBe(204);

    const renewal = await core.http.service('POST', '/internal/v1/stream-leases', { holder: tenant.holder, wanted: [tenant.streamConnectionId] });
    expect(renewal).toMatchObject({ status: 200, body: { granted: [], unreadable: [], gone: [tenant.streamConnectionId] } });
    const released = await core.http.service('POST', '/internal/v1/stream-leases', { holder: tenant.holder, wanted: [], release: [tenant.streamConnectionId] });
    expect(released.body.gone).toEqual([tenant.streamConnectionId]);
    const directory = await core.http.service('GET', `/internal/v1/stream-connections?holder=${tenant.holder}`);
    expect(directory.body.items.map((i: { id: string }) => i.id)).not.toContain(tenant.streamConnectionId);
    expect((await core.http.service('POST', '/internal/v1/stream-status', streamStatus(tenant.holder, tenant.streamConnectionId))).body).toEqual({ recorded: 0 });

    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'after-delete' });
    expect((await core.http.service('POST', '/internal/v1/scheduled-events', scheduledEvent(ws))).body.workspacesDue).toBe(0);

    expect(Object.entries(await countsOf(ws)).filter(([, n]) => n > 0)).toEqual([]);

    // What still arrives for it is refused, and the refusal kept as long as those of updates naming no workspace.
    const late = await core.http.service('POST', '/internal/v1/ingest', { updates: [update(tenant.fleet, [{ signal: 'soc_pct', value: 50, observedAt: Date.now() - 1000 }])] });
    expect(late.body.results[0]).toMatchObject({ status: 'rejected', reason: 'unknown_workspace' });
    expect(Object.entries(await countsOf(ws)).filter(([, n]) => n > 0)).toEqual([['ingest_rejections', 1]]);
    await core.db.query(`UPDATE ingest_rejections SET rejected_at = now() - interval '31 days' WHERE workspace_id = $1`, [ws]);
    expect((await runRetention(core.db)).deletedRejections).toBeGreaterThanOrEqual(1);
    expect(await rowsOf('ingest_rejections', ws)).toBe(0);
  });
});

describe('deleting a workspace while it is written', { timeout: underLoad }, () => {
  it('leaves nothing of it whatever ingest was doing, and the other tenants in the same batches are written', async () => {
    const doomed = await populatedTenant('Busy');
    const bystander = await populatedTenant('Bystander');
    const ws = doomed.fleet.workspaceId;
    const base = Date.now() - 20_000;
    let sent = 0;
    const send = () => {
      sent += 1;
      const readings = [{ signal: 'soc_pct', value: 30 + (sent % 50), observedAt: base + sent }];
      return core.http.service('POST', '/internal/v1/ingest', { updates: [update(doomed.fleet, readings), update(bystander.fleet, readings)] });
    };
    // Four writers keep sending, before, during and after the delete, so batches meet every phase of it.
    let deleteDone = false;
    const writers = Array.from({ length: 4 }, async () => {
      const answers: Awaited<ReturnType<typeof send>>[] = [];
      for (let after = 0; after < 2; ) {
        answers.push(await send());
        if (deleteDone) after += 1;
      }
      return answers;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const deleted = await core.http.admin('DELETE', `/v1/workspaces/${ws}`);
    deleteDone = true;
    expect(deleted.status).toBe(204);
    const answers = (await Promise.all(writers)).flat();
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body.results[1].status).toBe('processed');
      expect(['processed', 'telematics_disabled', 'unknown_workspace']).toContain(answer.body.results[0].reason ?? answer.body.results[0].status);
    }
    // Only the refusals of batches that came after the delete name it.
    expect(Object.entries(await countsOf(ws)).filter(([table, n]) => n > 0 && table !== 'ingest_rejections')).toEqual([]);
    const { rows } = await core.db.query<{ reason: string }>('SELECT DISTINCT reason FROM ingest_rejections WHERE workspace_id = $1', [ws]);
    expect(rows.map((r) => r.reason).filter((r) => r !== 'unknown_workspace')).toEqual([]);
    await retire(bystander.fleet.workspaceId);
  });
});

describe('renaming and disabling a workspace', { timeout: underLoad }, () => {
  it('renames, and a disabled workspace is not polled, streamed or accepted, and says so in its health', async () => {
    const tenant = await populatedTenant('Switchable');
    const ws = tenant.fleet.workspaceId;
    const renamed = await core.http.admin('PATCH', `/v1/workspaces/${ws}`, { name: '  North depot  ' });
    expect(renamed).toMatchObject({ status: 200, body: { name: 'North depot', policy: { enabled: true } } });
    expect((await core.http.request('PATCH', `/v1/workspaces/${ws}`, { token: tenant.key, body: { name: 'Mine' } })).status).toBe(403);

    const disabled = await core.http.admin('PATCH', `/v1/workspaces/${ws}`, { enabled: false });
    expect(disabled.body.policy.enabled).toBe(false);
    expect(disabled.body.policy.updatedAt > renamed.body.policy.updatedAt).toBe(true);

    const refused = await core.http.service('POST', '/internal/v1/ingest', { updates: [update(tenant.fleet, [{ signal: 'soc_pct', value: 70, observedAt: Date.now() - 1000 }])] });
    expect(refused.body.results[0]).toMatchObject({ status: 'rejected', reason: 'telematics_disabled' });
    const runsBefore = await rowsOf('poll_runs', ws);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'while-disabled' });
    expect(await rowsOf('poll_runs', ws)).toBe(runsBefore);
    expect((await core.http.service('POST', '/internal/v1/scheduled-events', scheduledEvent(ws))).body.workspacesDue).toBe(0);
    const renewal = await core.http.service('POST', '/internal/v1/stream-leases', { holder: tenant.holder, wanted: [tenant.streamConnectionId] });
    expect(renewal.body).toMatchObject({ granted: [], gone: [] });
    const directory = await core.http.service('GET', `/internal/v1/stream-connections?holder=${tenant.holder}`);
    expect(directory.body.items.map((i: { id: string }) => i.id)).not.toContain(tenant.streamConnectionId);

    const health = await core.http.request('GET', `/v1/workspaces/${ws}/health`, { token: tenant.key });
    expect(health.body).toMatchObject({ status: 'disabled', reasons: [{ code: 'telematics_disabled' }] });
    const all = await core.http.admin('GET', '/v1/health');
    expect(all.body.counts.disabled).toBeGreaterThanOrEqual(1);
    const statuses = all.body.items.map((i: { status: string }) => i.status);
    expect(statuses.slice(statuses.indexOf('disabled')).every((s: string) => s === 'disabled')).toBe(true);

    expect((await core.http.admin('PATCH', `/v1/workspaces/${ws}`, { enabled: true })).body.policy.enabled).toBe(true);
    const accepted = await core.http.service('POST', '/internal/v1/ingest', { updates: [update(tenant.fleet, [{ signal: 'soc_pct', value: 71, observedAt: Date.now() - 500 }])] });
    expect(accepted.body.results[0]).toMatchObject({ status: 'processed', readings: [{ status: 'accepted' }] });
    expect((await core.http.request('GET', `/v1/workspaces/${ws}/health`, { token: tenant.key })).body.status).not.toBe('disabled');

    expect((await core.http.admin('PATCH', `/v1/workspaces/${randomUUID()}`, { name: 'Nowhere' })).body.code).toBe('workspace_not_found');
    expect((await core.http.admin('PATCH', `/v1/workspaces/${ws}`, { colour: 'red' })).status).toBe(400);
    await retire(ws);
  });
});

describe('names', { timeout: underLoad }, () => {
  it('are trimmed, and refused blank, invisible, with control characters or too long, naming the field', async () => {
    const refuses = async (method: string, path: string, body: unknown, field: string) => {
      const answer = await core.http.admin(method, path, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.code).toBe('validation_failed');
      expect(answer.body.errors.map((e: { path: string }) => e.path)).toContain(`body.${field}`);
      return answer;
    };
    const blank = await refuses('POST', '/v1/workspaces', { name: '   ' }, 'name');
    expect(blank.body.errors[0].message).toBe('must not be blank');
    await refuses('POST', '/v1/workspaces', { name: '' }, 'name');
    await refuses('POST', '/v1/workspaces', { name: '\u200b\u00a0' }, 'name');
    await refuses('POST', '/v1/workspaces', { name: 'Depot\u0085East' }, 'name');
    await refuses('POST', '/v1/workspaces', { name: 'Depot\tEast' }, 'name');
    await refuses('POST', '/v1/workspaces', { name: 'x'.repeat(201) }, 'name');

    const ws = await core.http.admin('POST', '/v1/workspaces', { name: '  Depot East ' });
    expect(ws.body.name).toBe('Depot East');
    await refuses('PATCH', `/v1/workspaces/${ws.body.id}`, { name: ' ' }, 'name');

    await refuses('POST', `/v1/workspaces/${ws.body.id}/vehicles`, { name: ' \u2028 ' }, 'name');
    const vehicle = await core.http.admin('POST', `/v1/workspaces/${ws.body.id}/vehicles`, { name: ' Van 1 ' });
    expect(vehicle.body.name).toBe('Van 1');
    await refuses('PATCH', `/v1/workspaces/${ws.body.id}/vehicles/${vehicle.body.id}`, { name: '' }, 'name');

    const connection = { provider: 'samsara', transport: 'poll', credentials: { apiToken: 'x' } };
    await refuses('POST', `/v1/workspaces/${ws.body.id}/connections`, { ...connection, label: '  ' }, 'label');
    const created = await core.http.admin('POST', `/v1/workspaces/${ws.body.id}/connections`, { ...connection, label: ' Samsara main ' });
    expect(created.body.label).toBe('Samsara main');
    await refuses('PATCH', `/v1/workspaces/${ws.body.id}/connections/${created.body.id}`, { label: '\u0000' }, 'label');
    await refuses('POST', `/v1/workspaces/${ws.body.id}/api-keys`, { name: ' ' }, 'name');
  });
});

describe('VINs', { timeout: underLoad }, () => {
  it('are unique in a workspace whatever their case or surrounding spaces, on create and on update, and never echoed', async () => {
    const ws = (await core.http.admin('POST', '/v1/workspaces', { name: 'VIN depot' })).body.id;
    const first = await core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, { name: 'Van 1', vin: ' wba3a5c51cf256651 ' });
    expect(first.body.vin).toBe('WBA3A5C51CF256651');
    const same = await core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, { name: 'Van 2', vin: 'WBA3A5C51CF256651' });
    expect(same).toMatchObject({ status: 409, body: { code: 'vin_taken' } });
    expect(same.body.detail).toContain(first.body.id);
    expect(same.text).not.toMatch(/wba3a5c51cf256651/i);

    const second = await core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, { name: 'Van 2', vin: '5YJ3E1EA7KF317000' });
    expect(second.status).toBe(201);
    const taken = await core.http.admin('PATCH', `/v1/workspaces/${ws}/vehicles/${second.body.id}`, { vin: 'Wba3a5c51cf256651' });
    expect(taken).toMatchObject({ status: 409, body: { code: 'vin_taken' } });
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}/vehicles/${second.body.id}`)).body.vin).toBe('5YJ3E1EA7KF317000');
    expect((await core.http.admin('PATCH', `/v1/workspaces/${ws}/vehicles/${first.body.id}`, { vin: 'WBA3A5C51CF256651', name: 'Van 1a' })).status).toBe(200);
    expect((await core.http.admin('PATCH', `/v1/workspaces/${ws}/vehicles/${second.body.id}`, { vin: '   ' })).body.code).toBe('validation_failed');
    expect((await core.http.admin('PATCH', `/v1/workspaces/${ws}/vehicles/${second.body.id}`, { vin: null })).body.vin).toBeNull();
    expect((await core.http.admin('PATCH', `/v1/workspaces/${ws}/vehicles/${second.body.id}`, { vin: 'wba3a5c51cf256651' })).status).toBe(409);

    // Another workspace may hold the same VIN: a tenant knows nothing of another's vehicles.
    const other = (await core.http.admin('POST', '/v1/workspaces', { name: 'Other VIN depot' })).body.id;
    expect((await core.http.admin('POST', `/v1/workspaces/${other}/vehicles`, { name: 'Van 1', vin: 'WBA3A5C51CF256651' })).status).toBe(201);
    // The index holds even for a writer that skips the API's check.
    await expect(core.db.query(`INSERT INTO vehicles (workspace_id, id, name, vin) VALUES ($1, $2, 'raw', ' wba3a5c51cf256651')`, [ws, randomUUID()])).rejects.toThrow();
  });
});

describe('vehicles', { timeout: underLoad }, () => {
  /** A workspace with a poll connection and a vehicle holding a snapshot, history from ingest and a poll, and a charging session. */
  async function fleetWithHistory(name: string) {
    const ws = (await core.http.admin('POST', '/v1/workspaces', { name })).body.id as string;
    const poll = (await core.http.admin('POST', `/v1/workspaces/${ws}/connections`, { provider: 'samsara', transport: 'poll', credentials: { apiToken: `sam-${name}` } })).body;
    const other = (await core.http.admin('POST', `/v1/workspaces/${ws}/connections`, { provider: 'samsara', transport: 'poll', credentials: { apiToken: `sam2-${name}` } })).body;
    const vehicle = await core.http.admin('POST', `/v1/workspaces/${ws}/vehicles`, {
      name: `${name} van`,
      vin: `VIN-${name}`,
      devices: [{ connectionId: poll.id, externalId: 'dev-0' }, { connectionId: other.id, externalId: 'dev-1' }],
    });
    const fleet: TestFleet = { workspaceId: ws, connectionId: poll.id, provider: 'samsara', vehicles: [{ id: vehicle.body.id, externalId: 'dev-0' }] };
    const key = (await core.http.admin('POST', `/v1/workspaces/${ws}/api-keys`, {})).body.key as string;
    const at = Date.now() - 60_000;
    const ingested = await core.http.service('POST', '/internal/v1/ingest', {
      updates: [
        {
          ...update(fleet, [{ signal: 'soc_pct', value: 64, observedAt: at }]),
          chargingSessions: [
            { externalId: `cs-${name}`, startedAt: new Date(at - 3_600_000).toISOString(), endedAt: new Date(at).toISOString(), startSocPct: 20, endSocPct: 64, energyKwh: 30, peakPowerKw: 50, location: null },
          ],
        },
      ],
    });
    expect(ingested.body.results[0].status).toBe('processed');
    await core.runner.runWorkspace({ workspaceId: ws, eventId: `poll-${name}` });
    await sweepTransitions(core.db, Date.now());
    return { ws, fleet, key, vehicleId: vehicle.body.id as string };
  }

  it('move, once unbound, to another workspace with their snapshot, history and charging sessions', async () => {
    const from = await fleetWithHistory('Mover');
    const to = (await core.http.admin('POST', '/v1/workspaces', { name: 'Destination' })).body.id as string;
    const path = `/v1/workspaces/${from.ws}/vehicles/${from.vehicleId}`;
    const historyBefore = (await core.http.admin('GET', `${path}/history`)).body.items;
    expect(historyBefore.length).toBeGreaterThanOrEqual(2);
    const snapshotBefore = (await core.http.admin('GET', path)).body.signals;

    expect((await core.http.request('POST', `${path}/move`, { token: from.key, body: { workspaceId: to } })).status).toBe(403);
    const bound = await core.http.admin('POST', `${path}/move`, { workspaceId: to });
    expect(bound).toMatchObject({ status: 409, body: { code: 'vehicle_bound' } });
    expect(bound.body.detail).toContain(`${from.fleet.connectionId}/dev-0`);
    expect((await core.http.admin('POST', `${path}/move`, { workspaceId: randomUUID() })).body.code).toBe('unknown_workspace');

    for (const device of (await core.http.admin('GET', path)).body.devices) {
      expect((await core.http.admin('DELETE', `${path}/devices/${device.connectionId}/${device.externalId}`)).status).toBe(204);
    }
    const taken = await core.http.admin('POST', `/v1/workspaces/${to}/vehicles`, { name: 'Same VIN', vin: 'vin-mover' });
    expect((await core.http.admin('POST', `${path}/move`, { workspaceId: to })).body.code).toBe('vin_taken');
    expect((await core.http.admin('DELETE', `/v1/workspaces/${to}/vehicles/${taken.body.id}`)).status).toBe(204);

    const moved = await core.http.admin('POST', `${path}/move`, { workspaceId: to });
    expect(moved).toMatchObject({ status: 200, body: { id: from.vehicleId, workspaceId: to, name: 'Mover van', vin: 'VIN-MOVER', devices: [] } });
    expect(moved.body.signals).toEqual(snapshotBefore);
    const there = `/v1/workspaces/${to}/vehicles/${from.vehicleId}`;
    expect((await core.http.admin('GET', `${there}/history`)).body.items).toEqual(historyBefore);
    expect((await core.http.admin('GET', `${there}/charging-sessions`)).body.items.map((s: { id: string }) => s.id)).toEqual(['cs-Mover']);
    expect((await core.http.admin('GET', path)).status).toBe(404);
    expect((await core.http.request('GET', there, { token: from.key })).status).toBe(404);
    for (const table of ['vehicles', 'signal_snapshot', 'signal_history', 'charging_sessions', 'vehicle_freshness_states']) {
      const { rows } = await core.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE workspace_id = $1 AND ${table === 'vehicles' ? 'id' : 'vehicle_id'} = $2`, [from.ws, from.vehicleId]);
      expect(rows[0]!.n, table).toBe(0);
    }
    // Moving it to where it is changes nothing.
    expect((await core.http.admin('POST', `${there}/move`, { workspaceId: to })).body.workspaceId).toBe(to);
    await retire(from.ws);
    await retire(to);
  });

  it('delete with their snapshot, history, charging sessions, bindings and events; the device is unknown from then on', async () => {
    const tenant = await fleetWithHistory('Scrapped');
    const path = `/v1/workspaces/${tenant.ws}/vehicles/${tenant.vehicleId}`;
    expect((await core.http.request('DELETE', path, { token: tenant.key })).status).toBe(403);
    expect((await core.http.admin('DELETE', path)).status).toBe(204);
    expect((await core.http.admin('DELETE', path)).body.code).toBe('vehicle_not_found');
    expect((await core.http.admin('GET', `${path}/history`)).status).toBe(404);

    for (const table of ['vehicles', 'signal_snapshot', 'signal_history', 'charging_sessions', 'device_bindings', 'vehicle_freshness_states']) {
      const { rows } = await core.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${table === 'vehicles' ? 'id' : 'vehicle_id'} = $1`, [tenant.vehicleId]);
      expect(rows[0]!.n, table).toBe(0);
    }
    // Its event counter was its row's; its events go with it.
    const { rows: events } = await core.db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE subject = $1', [`vehicles/${tenant.vehicleId}`]);
    expect(events[0]!.n).toBe(0);
    const late = await core.http.service('POST', '/internal/v1/ingest', { updates: [update(tenant.fleet, [{ signal: 'soc_pct', value: 10, observedAt: Date.now() - 1000 }])] });
    expect(late.body.results[0]).toMatchObject({ status: 'rejected', reason: 'unknown_device' });
    // The workspace and its connections stay.
    expect((await core.http.admin('GET', `/v1/workspaces/${tenant.ws}/connections`)).body.items).toHaveLength(2);
    await retire(tenant.ws);
  });
});

// A database of its own: a second PGlite to start, which a loaded machine makes slow.
describe('the migration making VINs unique whatever their case', { timeout: 2 * underLoad }, () => {
  it('refuses stored duplicates, naming the vehicles but not the VIN, and changes nothing until they are fixed', async () => {
    const { db, drop } = await emptyDatabase();
    try {
      await migrate(db, listMigrations().filter((m) => m.version < '0012'));
      const ws = randomUUID();
      const [older, newer, apart] = [randomUUID(), randomUUID(), randomUUID()];
      await db.query(`INSERT INTO workspaces (id, name) VALUES ($1, 'Old depot')`, [ws]);
      await db.query(
        `INSERT INTO vehicles (workspace_id, id, name, vin, created_at) VALUES
           ($1, $2, 'A', 'wba3a5c51cf256651', now() - interval '2 days'), ($1, $3, 'B', 'WBA3A5C51CF256651 ', now()), ($1, $4, 'C', 'OTHER', now())`,
        [ws, older, newer, apart],
      );

      const refusal = await migrate(db).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(refusal?.message).toMatch(/0012_lifecycle refused/);
      expect(refusal?.message).toContain(`workspace ${ws}: vehicles ${older}, ${newer}`);
      expect(refusal?.message).not.toContain(apart);
      expect(refusal?.message).not.toMatch(/wba3a5c51cf256651/i);
      const applied = await db.query<{ version: string }>('SELECT version FROM schema_migrations');
      expect(applied.rows.map((r) => r.version)).not.toContain('0012_lifecycle');
      expect((await db.query('SELECT 1 FROM vehicles WHERE vin IS NOT NULL')).rowCount).toBe(3);

      await db.query(`UPDATE vehicles SET vin = NULL WHERE id = $1`, [newer]);
      expect(await migrate(db)).toEqual(listMigrations().filter((m) => m.version >= '0012').map((m) => m.version));
      await expect(db.query(`INSERT INTO vehicles (workspace_id, id, name, vin) VALUES ($1, $2, 'D', 'Wba3a5c51cf256651')`, [ws, randomUUID()])).rejects.toThrow();
    } finally {
      await drop();
    }
  });
});

/** A database with no schema yet: a fresh PGlite, or an emptied schema of the test PostgreSQL. */
async function emptyDatabase(): Promise<{ db: Database; drop: () => Promise<void> }> {
  if (backend === 'pglite') {
    const db = await openPglite();
    return { db, drop: () => db.close() };
  }
  const database = await createTestDatabase();
  await database.db.exec(`DROP SCHEMA ${database.schema} CASCADE; CREATE SCHEMA ${database.schema}`);
  return { db: database.db, drop: () => database.drop() };
}
