/**
 * The demo's migrating yard (src/demo/seed.ts, simulators.ts): a workspace of its own reading a Samsara account of
 * its own, every vehicle bound to one poll connection, no backfill when they are bound (its history is the legacy
 * poller's to write), its cutover the one `demoMigratingCutover` says; a second start finds it again, pointed at the
 * new simulators, and adds nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listConnections } from '../../src/core/registry/connections.ts';
import { getWorkspace, listWorkspaces } from '../../src/core/registry/workspaces.ts';
import { demoMigratingCutover, demoMigratingWorkspace, seedDemo } from '../../src/demo/seed.ts';
import { demoFleetSizes, demoMigratingAccount, startDemoSimulators, type DemoProvider, type DemoSimulators } from '../../src/demo/simulators.ts';
import { startTestCore, type TestCore } from '../support/core.ts';

const ports = Object.fromEntries(Object.keys(demoFleetSizes).map((provider) => [provider, 0])) as Record<DemoProvider, number>;
const small = Object.fromEntries(Object.keys(demoFleetSizes).map((provider) => [provider, 2])) as Record<DemoProvider, number>;
let core: TestCore;
const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-yard-'));
const running: DemoSimulators[] = [];

beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await Promise.all(running.map((sims) => sims.stop()));
  await core?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<DemoSimulators> {
  const sims = await startDemoSimulators({ host: '127.0.0.1', ports, timeScale: 5, vehicles: small });
  running.push(sims);
  return sims;
}

async function bindings(workspaceId: string) {
  const { rows } = await core.db.query<{ connection_id: string; external_id: string }>('SELECT connection_id, external_id FROM device_bindings WHERE workspace_id = $1 ORDER BY external_id', [workspaceId]);
  return rows;
}

describe("the demo's migrating yard", () => {
  it('is seeded with its own Samsara account and cutover, once', async () => {
    const sims = await start();
    const yard = (await seedDemo(core.db, core.secretKey, sims, dataDir)).find((w) => w.name === demoMigratingWorkspace)!;
    const externalIds = sims.migratingFleet.vehicles.map((v) => v.samsaraId);
    expect(yard.migrating?.vehicles).toEqual(sims.migratingFleet.vehicles.map((v) => ({ externalId: v.samsaraId, name: v.name })));
    expect(externalIds).toHaveLength(demoMigratingAccount.vehicles);
    expect((await getWorkspace(core.db, yard.id)).cutover.mode).toBe(demoMigratingCutover);
    const connections = await listConnections(core.db, yard.id);
    expect(connections).toMatchObject([{ id: yard.migrating!.connectionId, provider: 'samsara', transport: 'poll', baseUrl: sims.running.samsara.url, enabled: true }]);
    expect((await bindings(yard.id)).map((b) => [b.connection_id, b.external_id])).toEqual([...externalIds].sort().map((id) => [yard.migrating!.connectionId, id]));
    const { rows: backfills } = await core.db.query('SELECT 1 FROM backfill_jobs WHERE workspace_id = $1', [yard.id]);
    expect(backfills).toEqual([]);

    // The yard's token reads the yard's fleet from the demo's one Samsara simulator, and only that.
    const listed = await fetch(`${sims.running.samsara.url}/fleet/vehicles`, { headers: { authorization: `Bearer ${demoMigratingAccount.credentials.apiToken}` } });
    expect(((await listed.json()) as { data: { id: string }[] }).data.map((v) => v.id)).toEqual(externalIds);

    // A second start: the same workspace and connection, pointed at the new simulator.
    const again = await start();
    const second = (await seedDemo(core.db, core.secretKey, again, dataDir)).find((w) => w.name === demoMigratingWorkspace)!;
    expect(second).toMatchObject({ id: yard.id, apiKey: yard.apiKey, migrating: { connectionId: yard.migrating!.connectionId } });
    expect((await listConnections(core.db, yard.id)).map((c) => c.baseUrl)).toEqual([again.running.samsara.url]);
    expect(await bindings(yard.id)).toHaveLength(externalIds.length);
    expect((await listWorkspaces(core.db)).filter((w) => w.name === demoMigratingWorkspace)).toHaveLength(1);
  });
});
