/**
 * `npm run bench:poll`: one full scheduled poll cycle of 100 workspaces x 100 vehicles (half Samsara, half
 * Geotab, from the simulators over HTTP), from the scheduled event to the last committed snapshot; then, in the
 * same run on the same database, the full-path ingest rate (POST /internal/v1/ingest), so the poll rate can be
 * read as a ratio.
 *
 * Two cycles are timed: the first poll of every connection (latest values) and a steady cycle one simulated
 * minute later (every change since the cursors). Runs on PGlite, and on PostgreSQL too when
 * FLEETWIRE_BENCH_DATABASE_URL (or DATABASE_URL) names one. Not part of `npm test`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.ts';
import { createConnection } from '../src/core/registry/connections.ts';
import { createWorkspace, defaultPolicy } from '../src/core/registry/workspaces.ts';
import { startCore, type CoreRuntime } from '../src/core/runtime.ts';
import { createLogger } from '../src/logging.ts';
import { startGeotabSimulator } from '../src/sim/geotab/simulator.ts';
import { startSamsaraSimulator } from '../src/sim/samsara/simulator.ts';
import { FleetModel } from '../src/sim/fleet-model.ts';
import type { RunningSimulator } from '../src/sim/simulator.ts';
import { onBenchBackends } from './support.ts';

const workspaces = Number(process.env.BENCH_WORKSPACES ?? 100);
const vehiclesPerWorkspace = Number(process.env.BENCH_VEHICLES_PER_WORKSPACE ?? 100);
const workers = Number(process.env.BENCH_POLL_WORKERS ?? 8);

interface CycleResult {
  seconds: number;
  requests: number;
  readings: number;
}

async function bindFleet(core: CoreRuntime, secretKey: Buffer, index: number, provider: 'samsara' | 'geotab', sim: RunningSimulator, fleet: FleetModel) {
  const workspace = await createWorkspace(core.db, { name: `Bench ${index}`, policy: { ...defaultPolicy, pollIntervalSeconds: 10 } });
  const connection = await createConnection(core.db, secretKey, workspace.id, {
    provider,
    transport: 'poll',
    baseUrl: sim.url,
    credentials: provider === 'samsara' ? { apiToken: `bench-${index}` } : { database: `bench_${index}`, userName: 'bench', password: 'bench' },
  });
  const ids = fleet.vehicles.map(() => randomUUID());
  await core.db.query(
    `INSERT INTO vehicles (workspace_id, id, name) SELECT $1, id, 'Bench ' || ord FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, ord)`,
    [workspace.id, ids],
  );
  await core.db.query(
    `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id)
     SELECT $1, $2, ext, id FROM unnest($3::text[], $4::uuid[]) AS t(ext, id)`,
    [workspace.id, connection.id, fleet.vehicles.map((v) => (provider === 'samsara' ? v.samsaraId : v.geotabId)), ids],
  );
  return workspace.id;
}

async function cycle(core: CoreRuntime, serviceToken: string, expectedRuns: number): Promise<CycleResult> {
  await core.db.query(`UPDATE workspace_poll_schedule SET last_enqueued_at = now() - interval '1 hour'`);
  const id = randomUUID();
  const started = performance.now();
  const answer = await request(`${core.url}/internal/v1/scheduled-events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ version: '0', id, 'detail-type': 'Scheduled Event', source: 'bench', time: new Date().toISOString(), detail: {} }),
  });
  const body = (await answer.body.json()) as { workspacesDue: number };
  if (body.workspacesDue !== expectedRuns) throw new Error(`expected ${expectedRuns} due workspaces, got ${body.workspacesDue}`);
  for (;;) {
    const { rows } = await core.db.query<{ done: number; failed: number; requests: number; readings: number }>(
      `SELECT count(*) FILTER (WHERE status <> 'running')::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed,
              COALESCE(sum(provider_requests), 0)::int AS requests, COALESCE(sum(accepted + late + duplicate + rejected), 0)::int AS readings
         FROM poll_runs WHERE trigger_event_id = $1`,
      [id],
    );
    const row = rows[0]!;
    if (row.done >= expectedRuns) {
      if (row.failed > 0) throw new Error(`${row.failed} poll runs failed`);
      return { seconds: (performance.now() - started) / 1000, requests: row.requests, readings: row.readings };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The full-path ingest rate on the same database: 1,000-update batches of 6 new readings each, over HTTP. */
async function ingestRate(core: CoreRuntime, serviceToken: string, secretKey: Buffer): Promise<number> {
  const fleet = new FleetModel({ seed: 9999, vehicles: 1000, startMs: Date.now() - 600_000 });
  const workspaceId = await bindFleet(core, secretKey, 9999, 'samsara', { url: 'http://127.0.0.1:1' } as RunningSimulator, fleet);
  const { rows } = await core.db.query<{ id: string }>('SELECT id FROM provider_connections WHERE workspace_id = $1', [workspaceId]);
  const connectionId = rows[0]!.id;
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, connections: 1 });
  const base = Date.now() - 300_000;
  const bodies = Array.from({ length: 10 }, (_, round) => {
    const at = new Date(base + round * 10_000).toISOString();
    return JSON.stringify({
      updates: fleet.vehicles.map((v, i) => ({
        workspaceId,
        provider: 'samsara',
        connectionId,
        externalDeviceId: v.samsaraId,
        source: 'poll',
        receivedAt: at,
        readings: [
          { signal: 'soc_pct', value: 50 + (i % 40), observedAt: at },
          { signal: 'odometer_km', value: 1000 + round, observedAt: at },
          { signal: 'location', value: { lat: 52.5, lon: 13.4 + round / 1000 }, observedAt: at },
          { signal: 'speed_kph', value: round, observedAt: at },
          { signal: 'heading_deg', value: i % 360, observedAt: at },
          { signal: 'charging_state', value: 'not_charging', observedAt: at },
        ],
      })),
    });
  });
  let ms = 0;
  for (const [round, body] of bodies.entries()) {
    const t0 = performance.now();
    const answer = await request(`${core.url}/internal/v1/ingest`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
      body,
    });
    await answer.body.text();
    if (round >= 2) ms += performance.now() - t0;
  }
  await dispatcher.close();
  return (8 * 6000) / (ms / 1000);
}

async function runOn(backend: string, env: Record<string, string>): Promise<void> {
  const secretKey = randomBytes(32);
  const serviceToken = `fws_bench_${randomBytes(16).toString('hex')}`;
  let clock = Date.now() - 60_000;
  const now = () => clock;
  const half = Math.floor(workspaces / 2);
  const fleets = Array.from({ length: workspaces }, (_, i) => new FleetModel({ seed: 5000 + i, vehicles: vehiclesPerWorkspace, startMs: clock - 60_000, timeScale: 5 }));
  const samsara = await startSamsaraSimulator({ now, accounts: fleets.slice(0, half).map((fleet, i) => ({ credentials: { apiToken: `bench-${i}` }, fleet })) });
  const geotab = await startGeotabSimulator({
    now,
    accounts: fleets.slice(half).map((fleet, i) => ({ credentials: { database: `bench_${half + i}`, userName: 'bench', password: 'bench' }, fleet })),
  });
  const config = loadConfig({
    ...env,
    FLEETWIRE_PORT: '0',
    FLEETWIRE_SCHEDULER: 'external',
    FLEETWIRE_POLL_WORKERS: String(workers),
    FLEETWIRE_ADMIN_TOKEN: `fwa_bench_${randomBytes(16).toString('hex')}`,
    FLEETWIRE_SERVICE_TOKEN: serviceToken,
    FLEETWIRE_SECRET_KEY: secretKey.toString('hex'),
    FLEETWIRE_LOG_LEVEL: 'warn',
  });
  const core = await startCore(config, createLogger({ level: 'warn', name: 'bench-poll' }));
  try {
    for (const [i, fleet] of fleets.entries()) await bindFleet(core, secretKey, i, i < half ? 'samsara' : 'geotab', i < half ? samsara : geotab, fleet);
    for (const fleet of fleets) fleet.advanceTo(clock);
    const first = await cycle(core, serviceToken, workspaces);
    clock += 60_000;
    for (const fleet of fleets) fleet.advanceTo(clock);
    const steady = await cycle(core, serviceToken, workspaces);
    const ingest = await ingestRate(core, serviceToken, secretKey);
    const line = (name: string, r: CycleResult) =>
      `${backend.padEnd(9)} ${name.padEnd(13)} ${workspaces * vehiclesPerWorkspace} vehicles  wall ${r.seconds.toFixed(2)} s  ` +
      `provider requests ${r.requests}  readings ${r.readings}  ${(r.readings / r.seconds / 1000).toFixed(1)}k readings/s  ` +
      `ratio to ingest ${((r.readings / r.seconds / ingest) * 100).toFixed(0)} %`;
    process.stdout.write(`${line('first cycle', first)}\n${line('steady cycle', steady)}\n`);
    process.stdout.write(`${backend.padEnd(9)} full-path ingest ${(ingest / 1000).toFixed(1)}k readings/s (same run, same database)\n`);
  } finally {
    await core.stop();
    await samsara.stop();
    await geotab.stop();
  }
}

async function main(): Promise<void> {
  process.stdout.write(`bench:poll  ${workspaces} workspaces x ${vehiclesPerWorkspace} vehicles (Samsara and Geotab simulators), ${workers} poll workers\n`);
  await onBenchBackends((backend) =>
    runOn(backend.name, {
      FLEETWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), 'fleetwire-bench-')),
      ...backend.coreEnv,
      ...(backend.name === 'postgres' ? { FLEETWIRE_DB_POOL_SIZE: '12' } : {}),
    }),
  );
}

await main();
process.exit(0);
