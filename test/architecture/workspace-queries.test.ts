/**
 * Every query of the ingest, read and health paths names its workspace (docs/ARCHITECTURE.md, "Scale-out"), so on a
 * database distributed by workspace_id each one is pruned to the shards of the workspaces it names.
 *
 * How. A small seeded fleet (three workspaces: two polled, one streamed) goes through the paths with a Database that
 * records every statement and its parameters while a labelled piece of work runs (test/support/recording-database.ts;
 * requests go through `app.inject`, so attribution follows the request and background loops are left out):
 * `ingestBatch` directly and through `POST /internal/v1/ingest` from a stream process holding its lease; the read
 * routes (vehicles page and its next page, vehicle, history plain, filtered, paged and bucketed, discovered devices,
 * rejections, the events listing) with a workspace key; and the health path (`/v1/workspaces/{ws}/health`, `/readyz`).
 *
 * The check. Each distinct statement is explained with its own parameters (`EXPLAIN (VERBOSE, FORMAT JSON)`, on
 * PGlite and on PostgreSQL alike) and judged by the rule in plan-scope.ts: every scan node of a distributed table
 * is pinned, that is filtered on its distribution column by a constant, or joined on it to something pinned. A plan
 * rather than the statement's text, because the text cannot tell `($1::uuid[] IS NULL OR ...)` given NULL from one
 * given a workspace, nor a join on workspace_id from one on vehicle_id alone, and the plan shows the conditions the
 * database will really apply. Statements that touch only global tables (table-placement.ts) or the catalog are
 * allowed and listed; the DDL that makes a missing history partition is the one script allowed; anything else that
 * cannot be explained fails, to be looked at.
 *
 * Outside the check, by design: fleet-wide views and background work (`GET /v1/health`, `/metrics`, the transition
 * sweeper, retention, the NATS publisher, the webhook scan, the poll scheduler) read every workspace and fan out to
 * every shard. `GET /v1/health` is recorded to show that the check does see such a statement, and the rule is also
 * shown a few statements that drop their workspace filter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamHolderHeader } from '../../src/canonical/stream-api.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { createApiKey } from '../../src/core/registry/api-keys.ts';
import { acquireStreamLeases } from '../../src/core/streams/stream-store.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { recordingDatabase, type RecordedStatement, type RecordingDatabase } from '../support/recording-database.ts';
import { judgePlan, type Distribution, type PlanNode, type StatementScope } from './plan-scope.ts';
import { distributionColumn, globalTables } from './table-placement.ts';

const fleetWide = 'fleet-wide: GET /v1/health';


let database: TestDatabase;
let db: RecordingDatabase;
let core: TestCore;
let fleet: TestFleet;
let other: TestFleet;
let streamed: TestFleet;
let judged: { statement: RecordedStatement; scope: StatementScope | { kind: 'partition_ddl' } }[];
let distribution: Distribution;

const streamHolder = 'architecture-stream-1';
const t0 = Date.now() - 3 * 3600_000;

/** The partitions of this schema's tables, by the table they belong to. */
async function loadDistribution(): Promise<Distribution> {
  const { rows } = await database.db.query<{ name: string; root: string }>(
    `SELECT c.relname AS name, r.relname AS root
       FROM pg_class c JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
      WHERE c.relispartition AND c.relnamespace = current_schema()::regnamespace`,
  );
  const roots = new Map(rows.map((row) => [row.name, row.root]));
  return { distributionColumn, rootOf: (table) => roots.get(table) ?? table };
}

const tablesSchema = () => database.schema ?? 'public';
const schemaOf = (schema: string | undefined) => (schema === tablesSchema() ? 'tables' : schema === 'pg_catalog' ? 'catalog' : 'other');

async function explain(text: string, params: readonly unknown[]): Promise<PlanNode> {
  const { rows } = await database.db.query<{ 'QUERY PLAN': { Plan: PlanNode }[] | string }>(`EXPLAIN (VERBOSE, FORMAT JSON) ${text}`, params);
  const plan = rows[0]!['QUERY PLAN'];
  return (typeof plan === 'string' ? (JSON.parse(plan) as { Plan: PlanNode }[]) : plan)[0]!.Plan;
}

async function judge(statement: RecordedStatement): Promise<StatementScope | { kind: 'partition_ddl' }> {
  if (statement.script) {
    if (/^\s*CREATE TABLE signal_history_p\d{8} \(LIKE signal_history [^;]*;\s*ALTER TABLE signal_history ATTACH PARTITION signal_history_p\d{8} FOR VALUES FROM \('[^']+'\) TO \('[^']+'\)\s*$/.test(statement.text)) {
      return { kind: 'partition_ddl' };
    }
    throw new Error(`a script the check does not know, in ${statement.label}: ${statement.text.slice(0, 200)}`);
  }
  if (!/^\s*(SELECT|WITH|INSERT|UPDATE|DELETE|VALUES)\b/i.test(statement.text)) {
    throw new Error(`a statement EXPLAIN cannot judge, in ${statement.label}: ${statement.text.slice(0, 200)}`);
  }
  return judgePlan(await explain(statement.text, statement.params), distribution, schemaOf);
}

async function inject(label: string, method: 'GET' | 'POST', url: string, options: { token: string; body?: unknown; headers?: Record<string, string> }) {
  const answer = await db.record(label, () =>
    core.app.inject({ method, url, headers: { authorization: `Bearer ${options.token}`, ...options.headers }, ...(options.body === undefined ? {} : { payload: options.body as object }) }),
  );
  expect(answer.statusCode, `${label}: ${answer.body.slice(0, 300)}`).toBe(200);
  return answer.json();
}

/** The events listing is a stream: read it until it has sent an event, then let it go. */
async function readEventStream(label: string, url: string, token: string): Promise<void> {
  const abort = new AbortController();
  const answer = await db.record(label, () =>
    core.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` }, payloadAsStream: true, signal: abort.signal }),
  );
  expect(answer.statusCode).toBe(200);
  let text = '';
  for await (const chunk of answer.stream()) {
    text += String(chunk);
    if (/\nevent: fleetwire\./.test(text)) break;
  }
  abort.abort();
}

beforeAll(async () => {
  database = await createTestDatabase();
  db = recordingDatabase(database.db);
  core = await startTestCore({ database: { ...database, db } });
  fleet = await createFleet(db, core.secretKey, { vehicles: 3 });
  other = await createFleet(db, core.secretKey, { vehicles: 2, name: 'Other depot' });
  streamed = await createFleet(db, core.secretKey, { vehicles: 1, provider: 'traccar', name: 'Streamed depot' });
  await acquireStreamLeases(db, core.secretKey, { holder: streamHolder, wanted: [streamed.connectionId], release: [], leaving: false }, 60);
  const key = await createApiKey(db, fleet.workspaceId, 'architecture');

  // Ingest: one batch over two workspaces with accepted, charging (events), unknown-device and unknown-signal
  // readings; then late and duplicate ones; then a stream process's batch over HTTP.
  await db.record('ingest: ingestBatch', () =>
    ingestBatch(db, [
      update(fleet, [
        { signal: 'soc_pct', value: 50, observedAt: t0 },
        { signal: 'charging_state', value: 'charging', observedAt: t0 },
        { signal: 'odometer_km', value: 1200, observedAt: t0 },
      ]),
      update(fleet, [{ signal: 'soc_pct', value: 61, observedAt: t0 + 60_000 }], { vehicle: 1 }),
      update(fleet, [{ signal: 'soc_pct', value: 40, observedAt: t0 }], { externalDeviceId: 'not-bound-yet' }),
      update(fleet, [{ signal: 'no_such_signal', value: 1, observedAt: t0 }], { vehicle: 2 }),
      update(other, [{ signal: 'soc_pct', value: 70, observedAt: t0 }]),
    ]),
  );
  await db.record('ingest: ingestBatch', () =>
    ingestBatch(db, [
      update(fleet, [
        { signal: 'soc_pct', value: 52, observedAt: t0 - 60_000 },
        { signal: 'soc_pct', value: 50, observedAt: t0 },
        { signal: 'soc_pct', value: 48, observedAt: t0 + 120_000 },
      ]),
    ]),
  );
  const streamedBatch = await inject('ingest: POST /internal/v1/ingest', 'POST', '/internal/v1/ingest', {
    token: core.serviceToken,
    headers: { [streamHolderHeader]: streamHolder },
    body: { updates: [update(streamed, [{ signal: 'speed_kph', value: 30, observedAt: t0 + 60_000 }])] },
  });
  expect(streamedBatch.results[0].readings).toEqual([{ signal: 'speed_kph', status: 'accepted' }]);

  const ws = `/v1/workspaces/${fleet.workspaceId}`;
  const vehicle = `${ws}/vehicles/${fleet.vehicles[0]!.id}`;
  const read = (label: string, url: string) => inject(label, 'GET', url, { token: key.key });
  const first = await read('read: vehicles page', `${ws}/vehicles?limit=2`);
  await read('read: vehicles page', `${ws}/vehicles?limit=2&cursor=${first.nextCursor}`);
  await read('read: vehicles page', `${ws}/vehicles?status=stale&active=true`);
  await read('read: vehicle', vehicle);
  await read('read: history', `${vehicle}/history`);
  const page = await read('read: history', `${vehicle}/history?signal=soc_pct&order=desc&limit=1&from=${new Date(t0 - 3600_000).toISOString()}`);
  await read('read: history', `${vehicle}/history?signal=soc_pct&order=desc&limit=1&cursor=${page.nextCursor}`);
  await read('read: history', `${vehicle}/history?bucket=15m&from=${new Date(t0 - 3600_000).toISOString()}`);
  await read('read: discovered devices', `${ws}/discovered-devices`);
  await read('read: rejections', `${ws}/rejections`);
  await core.events.flush();
  await readEventStream('read: events listing', `${ws}/events?after=0&types=fleetwire.vehicle.charging.started`, key.key);
  await read('health: workspace', `${ws}/health`);
  await inject('health: readyz', 'GET', '/readyz', { token: core.serviceToken });
  await inject(fleetWide, 'GET', '/v1/health', { token: core.adminToken });

  distribution = await loadDistribution();
  const seen = new Set<string>();
  judged = [];
  for (const statement of db.statements) {
    const key = `${statement.label}\n${statement.text}\n${JSON.stringify(statement.params)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    judged.push({ statement, scope: await judge(statement) });
  }
});
afterAll(async () => {
  await core?.close();
  await database?.drop();
});

const brief = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 160);
const labels = ['ingest: ingestBatch', 'ingest: POST /internal/v1/ingest', 'read: vehicles page', 'read: vehicle', 'read: history', 'read: discovered devices', 'read: rejections', 'read: events listing', 'health: workspace'];

describe('workspace-scoped queries', () => {
  it('every statement of the ingest, read and health paths reaches distributed tables only through workspace-pinned scans', () => {
    const unscoped = judged.flatMap((j) => {
      if (j.statement.label === fleetWide || j.scope.kind !== 'unscoped') return [];
      return [{ label: j.statement.label, statement: brief(j.statement.text), unpinned: j.scope.unpinned }];
    });
    expect(unscoped).toEqual([]);
    // Each path was really walked: it ran statements on distributed tables, all of them judged scoped.
    for (const label of labels) {
      expect(judged.filter((j) => j.statement.label === label && j.scope.kind === 'scoped').length, label).toBeGreaterThan(0);
    }
  });

  it('their other statements read global tables, the catalog or no table, or make a history partition', () => {
    const allowed = (table: string) => globalTables[table] !== undefined || table.startsWith('pg_catalog.');
    const global = judged.filter((j) => j.statement.label !== fleetWide && j.scope.kind === 'global');
    const outside = global.flatMap((j) => (j.scope.kind === 'global' ? j.scope.tables.filter((t) => !allowed(t)).map((t) => `${j.statement.label}: ${t}`) : []));
    expect(outside).toEqual([]);
    // The list of what is allowed, as the paths use it today.
    const used = [...new Set(global.flatMap((j) => (j.scope.kind === 'global' ? j.scope.tables : [])))].sort();
    expect(used.every(allowed)).toBe(true);
    expect(used).toContain('schema_migrations');
    const kinds = new Set(judged.map((j) => j.scope.kind));
    expect(kinds.has('partition_ddl') && kinds.has('no_table')).toBe(true);
  });

  it('finds statements that drop their workspace filter', async () => {
    // The fleet-wide roll-up asks for every workspace: its statements carry no workspace, and the check says so.
    expect(judged.some((j) => j.statement.label === fleetWide && j.scope.kind === 'unscoped')).toBe(true);

    const [vehicleId, ws] = [fleet.vehicles[0]!.id, fleet.workspaceId];
    const scopeOf = async (text: string, params: unknown[]) => (await judge({ label: 'probe', text, params, script: false })).kind;
    expect(await scopeOf('SELECT name FROM vehicles WHERE workspace_id = $1 AND id = $2', [ws, vehicleId])).toBe('scoped');
    expect(await scopeOf('SELECT name FROM vehicles WHERE id = $1', [vehicleId])).toBe('unscoped');
    expect(await scopeOf('SELECT name FROM vehicles WHERE workspace_id = $1 OR id = $2', [ws, vehicleId])).toBe('unscoped');
    expect(await scopeOf('SELECT name FROM vehicles WHERE ($1::uuid IS NULL OR workspace_id = $1)', [null])).toBe('unscoped');
    expect(await scopeOf('SELECT signal FROM signal_history WHERE vehicle_id = $1', [vehicleId])).toBe('unscoped');
    const joined = (on: string) =>
      scopeOf(`SELECT s.signal FROM vehicles v JOIN signal_snapshot s ON ${on} WHERE v.workspace_id = $1 AND v.name = $2`, [ws, 'Vehicle 0000']);
    expect(await joined('s.workspace_id = v.workspace_id AND s.vehicle_id = v.id')).toBe('scoped');
    expect(await joined('s.vehicle_id = v.id')).toBe('unscoped');
  });
});
