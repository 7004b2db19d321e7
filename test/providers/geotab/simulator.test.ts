/**
 * The Geotab simulator's conformance to the MyGeotab wire format, over real HTTP on 127.0.0.1 with raw JSON-RPC
 * (not our client): Authenticate, versions and paging, the 50,000 clamp, session expiry, the Authenticate limit,
 * MissingMethodException, and each injected fault. What it serves is checked against the fleet model's own
 * samples, so its encoding and its ground truth are both tested.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { rawOdometerOffsetM } from '../../../src/sim/geotab/simulator-feeds.ts';
import { startGeotabSimulator } from '../../../src/sim/geotab/simulator.ts';
import {
  deviceSchema,
  deviceStatusInfoSchema,
  diagnosticIds,
  jsonRpcErrorEnvelopeSchema,
  logRecordSchema,
  statusDataSchema,
} from '../../../src/providers/geotab/wire.ts';
import { FleetModel, type Sample } from '../../../src/sim/fleet-model.ts';
import { authenticate, login, rawRpc, startHarness, stopAll, type Harness } from './harness.ts';

afterEach(stopAll);

const versionPattern = /^[0-9a-f]{16}$/;

function expectRpcError(answer: { status: number; json: unknown; text: string }, type: string, code = -32000) {
  expect(answer.status).toBe(200);
  const envelope = jsonRpcErrorEnvelopeSchema.parse(answer.json);
  expect(envelope.jsonrpc).toBe('2.0');
  expect(envelope.error.code).toBe(code);
  expect(envelope.error.data?.type, answer.text).toBe(type);
  expect(envelope.error.data?.id).toMatch(/^[0-9a-f-]{36}$/);
  if (type !== 'OverLimitException') expect(envelope.error.errors?.[0]?.name).toBe(type);
}

/**
 * OverLimitException in exactly the shape of the SDK guide "Concepts" (fixture error-over-limit.json): message,
 * code -32000 and data {id, type}, nothing else; Retry-After in whole seconds.
 */
const overLimitFixture = JSON.parse(readFileSync(new URL('./fixtures/error-over-limit.json', import.meta.url), 'utf8')) as { error: { data: object } };
function expectOverLimit(answer: { status: number; json: any; text: string; headers: Headers }, message: RegExp) {
  expectRpcError(answer, 'OverLimitException');
  expect(Object.keys(answer.json).sort()).toEqual(Object.keys(overLimitFixture).sort());
  expect(Object.keys(answer.json.error).sort()).toEqual(Object.keys(overLimitFixture.error).sort());
  expect(Object.keys(answer.json.error.data).sort()).toEqual(Object.keys(overLimitFixture.error.data).sort());
  expect(answer.json.error.message).toMatch(message);
  expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
}

/** The fleet sample behind a served entity: same vehicle, signal and time. */
function sampleOf(h: Harness, geotabId: string, signal: Sample['signal'], dateTime: string): Sample | undefined {
  const vehicle = h.fleet.vehicles.findIndex((v) => v.geotabId === geotabId);
  const at = Date.parse(dateTime);
  return h.fleet.samplesFrom(h.fleet.startSeq).find((s) => s.vehicle === vehicle && s.signal === signal && s.observedAtMs === at);
}

const signalOfDiagnostic: Record<string, Sample['signal']> = {
  [diagnosticIds.stateOfCharge]: 'soc_pct',
  [diagnosticIds.odometer]: 'odometer_km',
  [diagnosticIds.odometerAdjustment]: 'odometer_km',
  [diagnosticIds.j1939TotalVehicleDistance]: 'odometer_km',
  [diagnosticIds.obdOdometer]: 'odometer_km',
  [diagnosticIds.chargingState]: 'charging_state',
  [diagnosticIds.isCharging]: 'charging_state',
  [diagnosticIds.ignition]: 'ignition',
  [diagnosticIds.batteryTemperature]: 'battery_temp_c',
  [diagnosticIds.batteryPower]: 'charge_power_kw',
};

/**
 * What Geotab would report for one fleet sample, written here from the documents (not from the simulator's code):
 * the odometer in metres through the vehicle's own diagnostic (J1939 for buses and trucks; corrected or OBD for
 * vans), every third vehicle with a raw protocol distance also has the adjusted odometer, its raw reading 1,000 km
 * short; IsCharging 1/0 then the charging-state code; battery power in W, negative into the battery.
 */
function expectedDiagnostics(h: Harness, sample: Sample): { id: string; data: unknown }[] {
  const vehicle = h.fleet.vehicles[sample.vehicle]!;
  switch (sample.signal) {
    case 'odometer_km': {
      const metres = Math.round(sample.value * 1000);
      const raw = vehicle.kind !== 'van' ? diagnosticIds.j1939TotalVehicleDistance : vehicle.index % 2 === 0 ? diagnosticIds.odometer : diagnosticIds.obdOdometer;
      if (vehicle.index % 3 === 0 && raw !== diagnosticIds.odometer) {
        return [
          { id: diagnosticIds.odometerAdjustment, data: metres },
          { id: raw, data: metres - rawOdometerOffsetM },
        ];
      }
      return [{ id: raw, data: metres }];
    }
    case 'charging_state':
      return [
        { id: diagnosticIds.isCharging, data: sample.value === 'charging' ? 1 : 0 },
        { id: diagnosticIds.chargingState, data: sample.value === 'charging' ? (vehicle.kind === 'van' ? 1 : 2) : 0 },
      ];
    case 'charge_power_kw':
      return [{ id: diagnosticIds.batteryPower, data: sample.value === 0 ? 0 : -Math.round(sample.value * 1000) }];
    case 'soc_pct':
      return [{ id: diagnosticIds.stateOfCharge, data: sample.value }];
    case 'ignition':
      return [{ id: diagnosticIds.ignition, data: sample.value ? 1 : 0 }];
    case 'battery_temp_c':
      return [{ id: diagnosticIds.batteryTemperature, data: sample.value }];
    default:
      return [];
  }
}

/** Pages a feed; the simulator's clock moves a second between calls, as MyGeotab's one-per-second limit needs. */
async function feedPages(url: string, credentials: unknown, typeName: string, resultsLimit: number, first: Record<string, unknown> = {}, h?: Harness) {
  const pages: { data: unknown[]; toVersion: string }[] = [];
  let params: Record<string, unknown> = { typeName, resultsLimit, credentials, ...first };
  for (let i = 0; i < 200; i += 1) {
    h?.advance(1000);
    const answer = await rawRpc(url, 'GetFeed', params);
    expect(answer.json?.result, answer.text.slice(0, 300)).toBeDefined();
    pages.push(answer.json.result);
    if (answer.json.result.data.length < resultsLimit) return pages;
    params = { typeName, resultsLimit, credentials, fromVersion: answer.json.result.toVersion };
  }
  throw new Error('the feed never drained');
}

describe('Geotab simulator: Authenticate and sessions', () => {
  it('authenticates with the reference shape and refuses wrong credentials with InvalidUserException', async () => {
    const h = await startHarness();
    const ok = await rawRpc(h.sim.url, 'Authenticate', { ...login });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({
      result: { credentials: { database: login.database, sessionId: expect.stringMatching(/^\d{5,20}$/), userName: login.userName }, path: 'ThisServer' },
      jsonrpc: '2.0',
    });
    expectRpcError(await rawRpc(h.sim.url, 'Authenticate', { ...login, password: 'wrong' }), 'InvalidUserException');
    expectRpcError(await rawRpc(h.sim.url, 'Authenticate', { ...login, database: 'other' }), 'InvalidUserException');
    expectRpcError(await rawRpc(h.sim.url, 'GetFeed', { typeName: 'StatusData' }), 'InvalidUserException');
    expectRpcError(
      await rawRpc(h.sim.url, 'GetFeed', { typeName: 'StatusData', credentials: { ...login, sessionId: '123' } }),
      'InvalidUserException',
    );
  });

  it('expires sessions on demand and after sessionTtlMs', async () => {
    const h = await startHarness({ sessionTtlMs: 60_000 });
    const call = (credentials: unknown) => rawRpc(h.sim.url, 'GetFeed', { typeName: 'LogRecord', resultsLimit: 1, credentials });
    const first = await authenticate(h.sim.url);
    expect((await call(first)).json.result).toBeDefined();
    h.sim.expireSessions();
    expectRpcError(await call(first), 'InvalidUserException');

    const second = await authenticate(h.sim.url);
    h.advance(59_000);
    expect((await call(second)).json.result).toBeDefined();
    h.advance(1_000);
    expectRpcError(await call(second), 'InvalidUserException');
  });

  it('allows 10 Authenticate calls per user per minute, then OverLimitException with Retry-After', async () => {
    const h = await startHarness();
    for (let i = 0; i < 10; i += 1) await authenticate(h.sim.url);
    h.advance(20_000);
    const refused = await rawRpc(h.sim.url, 'Authenticate', { ...login });
    expectOverLimit(refused, /^API calls quota exceeded\. Maximum admitted 10 per 1m\.$/);
    // The window opened 20 s ago: it has room again in 40 s.
    expect(refused.headers.get('retry-after')).toBe('40');
    // Another user has a window of its own.
    expectRpcError(await rawRpc(h.sim.url, 'Authenticate', { ...login, userName: 'someone@else' }), 'InvalidUserException');
    h.advance(40_000);
    await authenticate(h.sim.url);
  });

  it('honours authenticatePerMinute', async () => {
    const h = await startHarness({ authenticatePerMinute: 2 });
    await authenticate(h.sim.url);
    await authenticate(h.sim.url);
    expectOverLimit(await rawRpc(h.sim.url, 'Authenticate', { ...login }), /Maximum admitted 2 per 1m/);
  });

  it('answers an unknown method with MissingMethodException (-32601) and a broken body with a JSON-RPC error', async () => {
    const h = await startHarness();
    expectRpcError(await rawRpc(h.sim.url, 'GetFeeds', {}), 'MissingMethodException', -32601);
    const broken = await fetch(`${h.sim.url}/apiv1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"method":' });
    expectRpcError({ status: broken.status, text: '', json: await broken.json() }, 'JsonSerializerException', -32700);
  });
});

describe('Geotab simulator: feeds', () => {
  it('pages StatusData with resultsLimit and 16-hex versions, each sample once, encoded as Geotab documents', async () => {
    const h = await startHarness({ vehicles: 6 });
    h.advance(5 * 60_000);
    const credentials = await authenticate(h.sim.url);
    const fleetEnd = h.fleet.endSeq;
    const pages = await feedPages(h.sim.url, credentials, 'StatusData', 25, {}, h);
    expect(pages.length).toBeGreaterThan(3);
    pages.slice(0, -1).forEach((page) => expect(page.data).toHaveLength(25));
    const versions = pages.map((p) => p.toVersion);
    versions.forEach((v) => expect(v).toMatch(versionPattern));
    expect([...versions].sort()).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);

    const entities = pages.flatMap((p) => p.data).map((e) => statusDataSchema.parse(e));
    expect(new Set(entities.map((e) => e.id)).size).toBe(entities.length);
    // Exactly the diagnostics of the log's samples, in log order (the clock moved while paging: the log grew).
    const samples = h.fleet.samplesFrom(h.fleet.startSeq).filter((s) => s.seq < h.fleet.endSeq);
    const expected = samples.flatMap((sample) =>
      expectedDiagnostics(h, sample).map((d) => ({ device: h.fleet.vehicles[sample.vehicle]!.geotabId, dateTime: new Date(sample.observedAtMs).toISOString(), ...d })),
    );
    expect(entities.map((e) => ({ device: e.device.id, dateTime: e.dateTime, id: e.diagnostic.id, data: e.data }))).toEqual(expected);
    expect(fleetEnd).toBeLessThanOrEqual(h.fleet.endSeq);
    // The fleet has J1939, OBD and corrected odometers, and adjusted odometers over short raw readings.
    const odometerIds = new Set(entities.filter((e) => signalOfDiagnostic[e.diagnostic.id] === 'odometer_km').map((e) => e.diagnostic.id));
    expect(odometerIds).toEqual(new Set([diagnosticIds.odometer, diagnosticIds.odometerAdjustment, diagnosticIds.j1939TotalVehicleDistance, diagnosticIds.obdOdometer]));

    // What it served is in the ground truth, in canonical terms: one reading per sample, the true odometer.
    const truth = h.sim.groundTruth.all();
    expect(truth).toHaveLength(samples.filter((s) => expectedDiagnostics(h, s).length > 0).length);
    const adjusted = entities.find((e) => e.diagnostic.id === diagnosticIds.odometerAdjustment)!;
    expect(truth).toContainEqual({
      account: login.database,
      externalDeviceId: adjusted.device.id,
      signal: 'odometer_km',
      value: adjusted.data / 1000,
      observedAtMs: Date.parse(adjusted.dateTime),
    });
    const power = entities.find((e) => e.diagnostic.id === diagnosticIds.batteryPower && e.data < 0);
    if (power) expect(truth).toContainEqual(expect.objectContaining({ signal: 'charge_power_kw', value: -power.data / 1000, observedAtMs: Date.parse(power.dateTime) }));
  });

  it('serves LogRecords with km/h speed from the log and only new samples after the last toVersion', async () => {
    // GetFeed is not limited here: the feed is asked again at the same instant.
    const h = await startHarness({ vehicles: 6, feedCallIntervalMs: 0 });
    h.advance(2 * 60_000);
    const credentials = await authenticate(h.sim.url);
    const [first] = await feedPages(h.sim.url, credentials, 'LogRecord', 50_000);
    const records = first!.data.map((e) => logRecordSchema.parse(e));
    expect(records.length).toBeGreaterThan(10);
    let pairedWithSpeed = 0;
    for (const record of records) {
      const location = sampleOf(h, record.device.id, 'location', record.dateTime);
      expect(location?.value).toEqual({ lat: record.latitude, lon: record.longitude });
      const speed = sampleOf(h, record.device.id, 'speed_kph', record.dateTime);
      if (speed) {
        pairedWithSpeed += 1;
        expect(record.speed).toBe(speed.value);
      }
    }
    expect(pairedWithSpeed).toBeGreaterThan(0);

    // Nothing new yet: an empty page and the same version.
    const again = await rawRpc(h.sim.url, 'GetFeed', { typeName: 'LogRecord', fromVersion: first!.toVersion, credentials });
    expect(again.json.result).toEqual({ data: [], toVersion: first!.toVersion });

    const before = h.now();
    h.advance(60_000);
    const next = await rawRpc(h.sim.url, 'GetFeed', { typeName: 'LogRecord', fromVersion: first!.toVersion, credentials });
    const fresh = next.json.result.data.map((e: unknown) => logRecordSchema.parse(e));
    expect(fresh.length).toBeGreaterThan(0);
    for (const record of fresh) expect(Date.parse(record.dateTime)).toBeGreaterThan(before);
    expect(next.json.result.toVersion > first!.toVersion).toBe(true);
  });

  it('starts a feed without a version at search.fromDate', async () => {
    const h = await startHarness({ vehicles: 6, feedCallIntervalMs: 0 });
    h.advance(3 * 60_000);
    const credentials = await authenticate(h.sim.url);
    const fromDate = new Date(h.now() - 60_000).toISOString();
    const [page] = await feedPages(h.sim.url, credentials, 'StatusData', 50_000, { search: { fromDate } });
    expect(page!.data.length).toBeGreaterThan(0);
    for (const e of page!.data) expect(Date.parse(statusDataSchema.parse(e).dateTime)).toBeGreaterThanOrEqual(Date.parse(fromDate));
    const [all] = await feedPages(h.sim.url, credentials, 'StatusData', 50_000);
    expect(all!.data.length).toBeGreaterThan(page!.data.length);
    expect(all!.toVersion).toBe(page!.toVersion);
  });

  it('clamps resultsLimit above 50,000 and serves the rest on the next page', async () => {
    // 9,000 vehicles report 6 StatusData each at start: 54,000 entities.
    const fleet = new FleetModel({ seed: 3, vehicles: 9000, startMs: Date.now() - 60_000 });
    const sim = await startGeotabSimulator({ accounts: [{ credentials: login, fleet }], now: () => fleet.startMs });
    try {
      const credentials = await authenticate(sim.url);
      const first = await rawRpc(sim.url, 'GetFeed', { typeName: 'StatusData', resultsLimit: 60_000, credentials });
      expect(first.json.result.data).toHaveLength(50_000);
      const rest = await rawRpc(sim.url, 'GetFeed', { typeName: 'StatusData', resultsLimit: 60_000, fromVersion: first.json.result.toVersion, credentials });
      expect(rest.json.result.data.length).toBeGreaterThan(0);
      expect(rest.json.result.data.length).toBeLessThan(50_000);
      const noLimit = await rawRpc(sim.url, 'GetFeed', { typeName: 'StatusData', credentials });
      expect(noLimit.json.result.data).toHaveLength(50_000);
    } finally {
      await sim.stop();
    }
  });

  it('serves DeviceStatusInfo with the latest heading, and Device with ids and names', async () => {
    const h = await startHarness({ vehicles: 5 });
    h.advance(90_000);
    const credentials = await authenticate(h.sim.url);
    const statuses = await rawRpc(h.sim.url, 'Get', { typeName: 'DeviceStatusInfo', credentials });
    const list = (statuses.json.result as unknown[]).map((e) => deviceStatusInfoSchema.parse(e));
    expect(list).toHaveLength(5);
    const latest = h.fleet.latest();
    for (const status of list) {
      const vehicle = h.fleet.vehicles.findIndex((v) => v.geotabId === status.device.id);
      const heading = latest.find((s) => s.vehicle === vehicle && s.signal === 'heading_deg')!;
      expect(status.bearing).toBe(heading.value);
      expect(Date.parse(status.dateTime)).toBe(heading.observedAtMs);
      expect(typeof status.isDeviceCommunicating).toBe('boolean');
    }
    expect(h.sim.groundTruth.all().map((r) => r.signal)).toEqual(Array(5).fill('heading_deg'));

    const devices = await rawRpc(h.sim.url, 'Get', { typeName: 'Device', credentials });
    expect((devices.json.result as unknown[]).map((d) => deviceSchema.parse(d)).map(({ id, name }) => ({ id, name }))).toEqual(
      h.fleet.vehicles.map((v) => ({ id: v.geotabId, name: v.name })),
    );
  });
});

describe('Geotab simulator: faults', () => {
  it('answers each injected fault as configured, and records nothing it did not fully serve', async () => {
    const h = await startHarness({ timeoutMs: 200, feedCallIntervalMs: 0 });
    const credentials = await authenticate(h.sim.url);
    const feed = () => rawRpc(h.sim.url, 'GetFeed', { typeName: 'StatusData', credentials });

    h.sim.faults.queue('server_error');
    expect((await feed()).status).toBe(500);

    h.sim.faults.queue('malformed');
    const malformed = await feed();
    expect(malformed.status).toBe(200);
    expect(malformed.json).toBeUndefined();

    h.sim.faults.queue('truncated');
    const truncated = await feed();
    expect(truncated.status).toBe(200);
    expect(truncated.text.startsWith('{"result":{"data":[')).toBe(true);
    expect(truncated.json).toBeUndefined();
    expect(h.sim.groundTruth.all()).toHaveLength(0);

    h.sim.faults.queue('auth');
    expectRpcError(await feed(), 'InvalidUserException');

    h.sim.faults.queue('rate_limit');
    const limited = await feed();
    expectOverLimit(limited, /quota exceeded/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);

    h.sim.faults.queue('timeout');
    const started = Date.now();
    await expect(feed()).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);

    // No fault left: the feed answers, and what it served is recorded.
    const ok = await feed();
    expect(ok.json.result.data.length).toBeGreaterThan(0);
    // One reading per sample, however many diagnostics report it.
    const readingsServed = new Set(ok.json.result.data.map((e: any) => `${e.device.id}|${signalOfDiagnostic[e.diagnostic.id]}|${e.dateTime}`));
    expect(h.sim.groundTruth.all()).toHaveLength(readingsServed.size);
    expect(h.sim.served.requests).toBe(8);
  });

  it('stops promptly with a request still held by a timeout fault', async () => {
    const h = await startHarness({ timeoutMs: 60_000 });
    h.sim.faults.queue('timeout');
    const pending = rawRpc(h.sim.url, 'Authenticate', { ...login }).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await h.sim.stop();
    expect(await pending).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(2000);
    await h.sim.stop();
  });
});
