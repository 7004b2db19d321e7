/**
 * Onboarding from what providers report: devices nobody bound are listed once per connection and external id with
 * their counts and a sample; an operator binds one to a new or an existing vehicle (the registry's checks apply:
 * a VIN taken is refused and nothing is written), ignores one (its updates are dropped before ingest and counted,
 * never stored as rejections), binds all that match a prefix, or imports vehicles from CSV, all or nothing with an
 * error for each bad row. Updates go through the real ingest handler with the test core's clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsvError, parseCsv } from '../../src/core/http/csv.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';

let core: TestCore;

beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

let observed = 0;
/** One update of `device` with an SoC reading newer than any before, judged at the test clock. */
async function report(fleet: TestFleet, device: string, soc = 60) {
  observed = Math.max(observed + 1000, core.clock.now() - 60_000);
  const outcome = await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: soc, observedAt: observed }, { signal: 'odometer_km', value: 1200, observedAt: observed }], { externalDeviceId: device })], { now: core.clock.now() });
  return outcome.results[0]!;
}

const base = (fleet: TestFleet) => `/v1/workspaces/${fleet.workspaceId}`;
const list = async (fleet: TestFleet, query = '') => (await core.http.admin('GET', `${base(fleet)}/discovered-devices${query}`)).body;
const rejectionsStored = async (fleet: TestFleet) =>
  (await core.db.query<{ n: number }>('SELECT coalesce(sum(count), 0)::int AS n FROM ingest_rejections WHERE workspace_id = $1', [fleet.workspaceId])).rows[0]!.n;
const vehicleCount = async (fleet: TestFleet) =>
  (await core.db.query<{ n: number }>('SELECT count(*)::int AS n FROM vehicles WHERE workspace_id = $1', [fleet.workspaceId])).rows[0]!.n;

function importCsv(fleet: TestFleet, csv: string, contentType = 'text/csv') {
  return core.http.request('POST', `${base(fleet)}/vehicles:import`, { token: core.adminToken, rawBody: csv, contentType });
}

describe('the discovered-devices list', () => {
  it('keeps each unbound device once, most recently seen first, with counts and a sample, paged', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'Discovery depot' });
    await report(fleet, 'alpha', 41);
    core.clock.advance(60_000);
    await report(fleet, 'beta');
    core.clock.advance(60_000);
    await report(fleet, 'alpha', 42);
    // A bound device is not discovered.
    expect((await report(fleet, 'dev-0')).status).toBe('processed');

    const page = await list(fleet);
    expect(page.items.map((d: { externalId: string }) => d.externalId)).toEqual(['alpha', 'beta']);
    const alpha = page.items[0];
    expect(alpha).toMatchObject({ connectionId: fleet.connectionId, provider: 'samsara', status: 'pending', readingCount: 4, ignoredCount: 0, vehicleId: null });
    expect(Date.parse(alpha.lastSeenAt) - Date.parse(alpha.firstSeenAt)).toBeGreaterThanOrEqual(120_000);
    expect(alpha.sample.soc_pct.value).toBe(42);
    expect(Object.keys(alpha.sample).sort()).toEqual(['odometer_km', 'soc_pct']);

    const first = await list(fleet, '?limit=1');
    expect(first.items.map((d: { externalId: string }) => d.externalId)).toEqual(['alpha']);
    const second = await list(fleet, `?limit=1&cursor=${first.nextCursor}`);
    expect(second.items.map((d: { externalId: string }) => d.externalId)).toEqual(['beta']);
    expect(second.nextCursor).toBeNull();
    expect((await core.http.admin('GET', `${base(fleet)}/discovered-devices?cursor=nonsense`)).status).toBe(400);
  });
});

describe('binding', () => {
  it('binds a discovered device to a new vehicle and to an existing one, after which its updates are accepted', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'Bind depot' });
    await report(fleet, 'new-one');
    await report(fleet, 'to-existing');

    const created = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind`, { connectionId: fleet.connectionId, externalId: 'new-one', vehicle: { name: 'Van 7', vin: 'wvwzzz1jz3w386752' } });
    expect(created.status).toBe(201);
    expect(created.body.created).toBe(true);
    const vehicle = (await core.http.admin('GET', `${base(fleet)}/vehicles/${created.body.vehicleId}`)).body;
    expect(vehicle).toMatchObject({ name: 'Van 7', vin: 'WVWZZZ1JZ3W386752', devices: [{ connectionId: fleet.connectionId, externalId: 'new-one' }] });

    const existing = fleet.vehicles[0]!.id;
    const bound = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind`, { connectionId: fleet.connectionId, externalId: 'to-existing', vehicleId: existing });
    expect([bound.status, bound.body]).toEqual([201, { vehicleId: existing, created: false }]);

    expect((await list(fleet)).items).toEqual([]);
    const done = await list(fleet, '?status=bound');
    expect(done.items.map((d: { externalId: string; vehicleId: string }) => [d.externalId, d.vehicleId]).sort()).toEqual(
      [['new-one', created.body.vehicleId], ['to-existing', existing]].sort(),
    );
    const after = await report(fleet, 'new-one', 70);
    expect(after.status).toBe('processed');
    expect(after.readings.map((r) => r.status)).toEqual(['accepted', 'accepted']);
  });

  it('refuses a VIN another vehicle has, a device that was never reported, and a body with both or neither target; nothing is written', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'VIN depot' });
    await report(fleet, 'vin-clash');
    const vehicles = await vehicleCount(fleet);
    const taken = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind`, { connectionId: fleet.connectionId, externalId: 'vin-clash', vehicle: { name: 'Clash', vin: ' vin0 ' } });
    expect([taken.status, taken.body.code]).toEqual([409, 'vin_taken']);
    expect(await vehicleCount(fleet)).toBe(vehicles);
    expect((await list(fleet)).items.map((d: { externalId: string }) => d.externalId)).toEqual(['vin-clash']);

    const unknown = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind`, { connectionId: fleet.connectionId, externalId: 'never-seen', vehicle: { name: 'Ghost' } });
    expect([unknown.status, unknown.body.code]).toEqual([404, 'discovered_device_not_found']);
    const both = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind`, { connectionId: fleet.connectionId, externalId: 'vin-clash', vehicleId: fleet.vehicles[0]!.id, vehicle: { name: 'Both' } });
    expect(both.status).toBe(400);
    expect(await vehicleCount(fleet)).toBe(vehicles);
  });

  it('shows a device bound any other way (POST .../vehicles with devices) as bound', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 0, name: 'Elsewhere depot' });
    await report(fleet, 'side-door');
    const made = await core.http.admin('POST', `${base(fleet)}/vehicles`, { name: 'Side door', devices: [{ connectionId: fleet.connectionId, externalId: 'side-door' }] });
    expect(made.status).toBe(201);
    expect((await list(fleet, '?status=bound')).items).toMatchObject([{ externalId: 'side-door', status: 'bound', vehicleId: made.body.id }]);
  });
});

describe('ignoring', () => {
  it('drops an ignored device before ingest, counts it, never stores it as a rejection; unignore brings the refusals back', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'Ignore depot' });
    await report(fleet, 'neighbour');
    const device = { connectionId: fleet.connectionId, externalId: 'neighbour' };
    const ignored = await core.http.admin('POST', `${base(fleet)}/discovered-devices/ignore`, device);
    expect([ignored.status, ignored.body]).toEqual([200, { status: 'ignored' }]);
    const stored = await rejectionsStored(fleet);

    const dropped = await report(fleet, 'neighbour');
    expect(dropped).toMatchObject({ status: 'rejected', reason: 'device_ignored' });
    await report(fleet, 'neighbour');
    expect(await rejectionsStored(fleet)).toBe(stored);
    const row = (await list(fleet, '?status=ignored')).items[0];
    expect(row).toMatchObject({ externalId: 'neighbour', status: 'ignored', readingCount: 6, ignoredCount: 4 });
    expect((await list(fleet)).items).toEqual([]);
    // Not counted as readings the workspace took, either: health's share is of what reached ingest.
    const { rows } = await core.db.query<{ readings: number }>('SELECT coalesce(sum(readings), 0)::int AS readings FROM ingest_reading_counts WHERE workspace_id = $1', [fleet.workspaceId]);
    expect(rows[0]!.readings).toBe(2);

    const back = await core.http.admin('POST', `${base(fleet)}/discovered-devices/unignore`, device);
    expect([back.status, back.body]).toEqual([200, { status: 'pending' }]);
    expect((await report(fleet, 'neighbour')).reason).toBe('unknown_device');
    expect(await rejectionsStored(fleet)).toBe(stored + 1);

    // A bound device is neither ignored nor pending.
    await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind`, { ...device, vehicle: { name: 'Neighbour after all' } });
    const refused = await core.http.admin('POST', `${base(fleet)}/discovered-devices/ignore`, device);
    expect([refused.status, refused.body.code]).toEqual([409, 'device_bound']);
  });
});

describe('bind-matching', () => {
  it('makes one vehicle for each pending device whose id starts with the prefix; a dry run writes nothing', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 0, name: 'Matching depot' });
    for (const device of ['truck-1', 'truck-2', 'van-1']) await report(fleet, device);
    const body = { connectionId: fleet.connectionId, externalIdPrefix: 'truck-', nameTemplate: 'Truck {externalId}' };

    const dry = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind-matching`, { ...body, dryRun: true });
    expect(dry.body).toEqual({ bound: [{ externalId: 'truck-1', vehicleId: null }, { externalId: 'truck-2', vehicleId: null }], skipped: [], remaining: 0 });
    expect(await vehicleCount(fleet)).toBe(0);

    const done = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind-matching`, body);
    expect(done.status).toBe(200);
    expect(done.body.bound.map((b: { externalId: string }) => b.externalId)).toEqual(['truck-1', 'truck-2']);
    const vehicles = (await core.http.admin('GET', `${base(fleet)}/vehicles`)).body.items;
    expect(vehicles.map((v: { name: string; devices: { externalId: string }[] }) => [v.name, v.devices[0]!.externalId])).toEqual([
      ['Truck truck-1', 'truck-1'],
      ['Truck truck-2', 'truck-2'],
    ]);
    expect((await list(fleet)).items.map((d: { externalId: string }) => d.externalId)).toEqual(['van-1']);

    // A template that makes no valid name skips the device, saying why.
    const blank = await core.http.admin('POST', `${base(fleet)}/discovered-devices/bind-matching`, { connectionId: fleet.connectionId, nameTemplate: '   ' });
    expect(blank.body).toEqual({ bound: [], skipped: [{ externalId: 'van-1', reason: 'invalid_name' }], remaining: 0 });
  });
});

describe('vehicles:import', () => {
  it('creates every row of a CSV table, quoted fields included, and marks the devices it binds as bound', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 0, name: 'Import depot' });
    await report(fleet, 'csv-dev-1');
    const csv = `\uFEFFname,vin,connection,external_id\r\n"Bus 1, depot ""north""",1HGCM82633A004352,${fleet.connectionId},csv-dev-1\r\nSpare van,,,\r\n`;
    const answer = await importCsv(fleet, csv);
    expect(answer.status).toBe(201);
    expect(answer.body.created.map((c: { row: number }) => c.row)).toEqual([2, 3]);
    const vehicles = (await core.http.admin('GET', `${base(fleet)}/vehicles`)).body.items;
    expect(vehicles.map((v: { name: string; vin: string | null; devices: unknown[] }) => [v.name, v.vin, v.devices.length])).toEqual([
      ['Bus 1, depot "north"', '1HGCM82633A004352', 1],
      ['Spare van', null, 0],
    ]);
    expect((await list(fleet, '?status=bound')).items).toMatchObject([{ externalId: 'csv-dev-1', vehicleId: answer.body.created[0].vehicleId }]);
  });

  it('writes nothing when any row is wrong, and reports every wrong row', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'Import refusal depot' });
    const other = await createFleet(core.db, core.secretKey, { vehicles: 0, name: 'Someone else' });
    const before = await vehicleCount(fleet);
    const csv = [
      'name,vin,connection,external_id',
      `Good one,,${fleet.connectionId},fresh-1`,
      'Taken VIN,vin0,,',
      'Twin A,SAMEVIN1,,',
      'Twin B,samevin1,,',
      `Foreign,,${other.connectionId},x-1`,
      `   ,,,`,
      'Too,many,fields,here,really',
      `Already bound,,${fleet.connectionId},dev-0`,
    ].join('\n');
    const answer = await importCsv(fleet, csv);
    expect(answer.status).toBe(422);
    expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(answer.body.code).toBe('import_refused');
    expect(answer.body.errors.map((e: { row: number; field: string | null; reason: string }) => [e.row, e.field, e.reason])).toEqual([
      [3, 'vin', 'vin_taken'],
      [5, 'vin', 'duplicate_in_file'],
      [6, 'connection', 'unknown_connection'],
      [7, 'name', 'required'],
      [8, null, 'column_count'],
      [9, 'external_id', 'device_already_bound'],
    ]);
    expect(await vehicleCount(fleet)).toBe(before);

    const broken = await importCsv(fleet, 'name,vin\n"open quote,\n');
    expect([broken.status, broken.body.code]).toEqual([422, 'invalid_csv']);
    const header = await importCsv(fleet, 'name,colour\nVan,red\n');
    expect(header.body.errors).toMatchObject([{ row: 1, reason: 'unknown_column' }]);
    const json = await importCsv(fleet, JSON.stringify({ name: 'x' }), 'application/json');
    expect(json.status).toBe(415);
    expect(await vehicleCount(fleet)).toBe(before);
  });
});

describe('the CSV reader', () => {
  it('reads RFC 4180: quoted commas, line breaks and doubled quotes, CRLF or LF, blank lines skipped', () => {
    expect(parseCsv('a,b\r\n"x, y","line\nbreak"\n\n"say ""hi""",\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'line\nbreak'] },
      { line: 5, fields: ['say "hi"', ''] },
    ]);
    expect(parseCsv('last,row')).toEqual([{ line: 1, fields: ['last', 'row'] }]);
  });

  it('refuses what RFC 4180 does not allow, naming the line', () => {
    expect(() => parseCsv('a\nb"c\n')).toThrow(new CsvError(2, 'a double quote inside a field that is not quoted (quote the whole field, and double the quote)'));
    expect(() => parseCsv('"a"b\n')).toThrow(/line 1: text after the closing quote/);
    expect(() => parseCsv('ok\n"never closed\n')).toThrow(/line 2: a quoted field is never closed/);
  });
});
