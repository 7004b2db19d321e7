/**
 * `fleetwire devices ...` and `fleetwire vehicles import` as an operator runs them: the real command against a core on
 * loopback. Devices a provider reported are listed with what they send, bound to a new and an existing vehicle,
 * ignored and taken back, bound by a prefix (dry run first); a CSV table is imported, and a bad one is refused
 * with every wrong row named and nothing written.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from './support/core.ts';
import { createFleet, update, type TestFleet } from './support/fleet.ts';
import { runFleetwire } from './support/processes.ts';

let core: TestCore;
let env: Record<string, string>;
let dir: string;

beforeAll(async () => {
  core = await startTestCore();
  dir = mkdtempSync(join(tmpdir(), 'fleetwire-cli-devices-'));
  env = { FLEETWIRE_DATA_DIR: dir, FLEETWIRE_CORE_URL: core.url, FLEETWIRE_ADMIN_TOKEN: core.adminToken, FLEETWIRE_LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await core.close();
});

const fleetwire = (args: string[]) => runFleetwire(args, env);

async function report(fleet: TestFleet, devices: string[]) {
  const now = core.clock.now();
  await ingestBatch(
    core.db,
    devices.map((d) => update(fleet, [{ signal: 'soc_pct', value: 64, observedAt: now - 30_000 }, { signal: 'location', value: { lat: 52.52, lon: 13.405 }, observedAt: now - 30_000 }], { externalDeviceId: d })),
    { now },
  );
}

describe('fleetwire devices', () => {
  it('lists discovered devices and binds, ignores and bind-matches them', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'CLI devices depot' });
    const ws = fleet.workspaceId;
    await report(fleet, ['bus-1', 'bus-2', 'bus-3', 'neighbour', 'van-9']);

    const listed = await fleetwire(['devices', 'discovered', '--workspace', ws]);
    expect(listed.code, listed.output).toBe(0);
    const [header, ...rows] = listed.output.trim().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['CONNECTION', 'EXTERNAL ID', 'STATUS', 'READINGS', 'LAST SEEN', 'VEHICLE', 'SAMPLE']);
    expect(rows).toHaveLength(5);
    const bus1 = rows.find((r) => r.includes('bus-1'))!.split(/\s{2,}/);
    expect(bus1).toEqual([fleet.connectionId, 'bus-1', 'pending', '2', expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), '-', expect.stringMatching(/soc_pct=64/)]);
    expect(bus1[6]).toMatch(/location=52\.5200,13\.4050/);

    const created = await fleetwire(['devices', 'bind', '--workspace', ws, '--connection', fleet.connectionId, 'van-9', '--name', 'Van 9', '--vin', 'vf1ag000x00000009']);
    expect(created.code, created.output).toBe(0);
    expect(created.output).toMatch(/^device van-9 bound to new vehicle [0-9a-f-]{36}$/m);
    const existing = await fleetwire(['devices', 'bind', '--workspace', ws, '--connection', fleet.connectionId, 'bus-3', '--vehicle', fleet.vehicles[0]!.id]);
    expect(existing.output.trim()).toBe(`device bus-3 bound to vehicle ${fleet.vehicles[0]!.id}`);

    const ignored = await fleetwire(['devices', 'ignore', '--workspace', ws, '--connection', fleet.connectionId, 'neighbour']);
    expect(ignored.output).toMatch(/device neighbour ignored: its updates are dropped before ingest/);
    const ignoredList = await fleetwire(['devices', 'discovered', '--workspace', ws, '--status', 'ignored', '--json']);
    expect(JSON.parse(ignoredList.output).items.map((d: { externalId: string }) => d.externalId)).toEqual(['neighbour']);
    const back = await fleetwire(['devices', 'unignore', '--workspace', ws, '--connection', fleet.connectionId, 'neighbour']);
    expect(back.output).toMatch(/device neighbour pending again/);

    const dry = await fleetwire(['devices', 'bind-matching', '--workspace', ws, '--connection', fleet.connectionId, '--prefix', 'bus-', '--name-template', 'Bus {externalId}', '--dry-run']);
    expect(dry.output.trim().split('\n')).toEqual(['would bind 2 devices (dry run: nothing written)', '  bus-1', '  bus-2']);
    const matched = await fleetwire(['devices', 'bind-matching', '--workspace', ws, '--connection', fleet.connectionId, '--prefix', 'bus-', '--name-template', 'Bus {externalId}']);
    expect(matched.code, matched.output).toBe(0);
    expect(matched.output.trim()).toMatch(/^bound 2 devices\n {2}bus-1 -> vehicle [0-9a-f-]{36}\n {2}bus-2 -> vehicle [0-9a-f-]{36}$/);
    const pending = await fleetwire(['devices', 'discovered', '--workspace', ws]);
    expect(pending.output.trim().split('\n').slice(1).map((r) => r.split(/\s{2,}/)[1])).toEqual(['neighbour']);
  }, 60_000);

  it("answers core's problems with their code and detail, and usage mistakes with the usage", async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 0, name: 'CLI devices problems' });
    const ws = fleet.workspaceId;
    const unknown = await fleetwire(['devices', 'bind', '--workspace', ws, '--connection', fleet.connectionId, 'ghost', '--name', 'Ghost']);
    expect([unknown.code, unknown.output.trim()]).toEqual([1, `fleetwire: 404 discovered_device_not_found: device ghost has not been reported on connection ${fleet.connectionId} of this workspace`]);
    const both = await fleetwire(['devices', 'bind', '--workspace', ws, '--connection', fleet.connectionId, 'ghost']);
    expect(both.code).toBe(2);
    expect(both.output).toMatch(/bind takes --vehicle <vehicle> \(an existing one\) or --name <name> \(a new one\)/);
    const wrong = await fleetwire(['devices', 'adopt', '--workspace', ws]);
    expect(wrong.code).toBe(2);
    expect(wrong.output).toMatch(/unknown command: devices adopt/);
  }, 60_000);
});

describe('fleetwire vehicles import', () => {
  it('imports a CSV table, and refuses a bad one naming every wrong row', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 0, name: 'CLI import depot' });
    const ws = fleet.workspaceId;
    const good = join(dir, 'good.csv');
    writeFileSync(good, `name,vin,connection,external_id\n"Coach 1, spare",,${fleet.connectionId},coach-1\nCoach 2,WDB9066331S000002,,\n`);
    const imported = await fleetwire(['vehicles', 'import', '--workspace', ws, good]);
    expect(imported.code, imported.output).toBe(0);
    expect(imported.output.trim()).toMatch(new RegExp(`^imported 2 vehicles into workspace ${ws}\\n {2}row 2: vehicle [0-9a-f-]{36}\\n {2}row 3: vehicle [0-9a-f-]{36}$`));

    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, `name,vin,connection,external_id\nCoach 3,wdb9066331s000002,,\n,,,\nCoach 4,,${fleet.connectionId},coach-1\n`);
    const refused = await fleetwire(['vehicles', 'import', '--workspace', ws, bad]);
    expect(refused.code).toBe(1);
    expect(refused.output.trim().split('\n')).toEqual([
      'fleetwire: 422 import_refused: the import was refused: 3 errors; nothing was written',
      expect.stringMatching(/^ {2}row 2 vin: vin_taken: vehicle [0-9a-f-]{36} of this workspace already has this VIN$/),
      '  row 3 name: required: name must not be blank',
      expect.stringMatching(/^ {2}row 4 external_id: device_already_bound: device coach-1 on connection .* is already bound to vehicle /),
    ]);
    const { rows } = await core.db.query<{ n: number }>('SELECT count(*)::int AS n FROM vehicles WHERE workspace_id = $1', [ws]);
    expect(rows[0]!.n).toBe(2);
  }, 60_000);
});
