/**
 * The Geotab simulator's methods beyond paging, against the MyGeotab SDK documents, over HTTP with raw JSON-RPC:
 * - the endpoint as mg-api-js posts it (`/apiv1/`, lib/HttpCall.js) and as mg-api-node posts it (form-encoded
 *   `JSON-RPC=`, shared/reference/provider-audit.md);
 * - GetVersion, ExecuteMultiCall (guide "Concepts": one credentials, results in order, `requestIndex` of the
 *   failing call), Get of Device, DeviceStatusInfo and Diagnostic with `search` and `resultsLimit` (a limit above
 *   50,000 is OverLimitException, guide "Concepts", result limits), GetFeed of Device and ChargeEvent (API
 *   reference, objects/ChargeEvent);
 * - the GetFeed limit of one call per second per entity type (SDK new.md 5.7.1902), answered as OverLimitException
 *   with Retry-After, and the X-Rate-Limit headers on success (guide "Concepts").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chargeEventSchema, deviceSchema, deviceStatusInfoSchema } from '../../../src/providers/geotab/wire.ts';
import { timeSpanMs } from '../../../src/providers/geotab/mapping.ts';
import { authenticate, formRpc, rawRpc, startHarness, stopAll } from './harness.ts';

afterEach(stopAll);

describe('Geotab simulator: how clients post', () => {
  it('answers on /apiv1/ with the trailing slash, as mg-api-js posts', async () => {
    const h = await startHarness();
    const answer = await rawRpc(h.sim.url, 'GetVersion', {}, '/apiv1/');
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ result: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/), jsonrpc: '2.0' });
  });

  it('reads a form-encoded JSON-RPC= body, as mg-api-node posts', async () => {
    const h = await startHarness();
    const auth = await formRpc(h.sim.url, 'Authenticate', { database: 'fleetwire_demo', userName: 'ops@fleetwire.test', password: 'pa55-W0rd-never-shown' });
    expect(auth.json.result.path).toBe('ThisServer');
    const devices = await formRpc(h.sim.url, 'Get', { typeName: 'Device', credentials: auth.json.result.credentials });
    expect(devices.json.result).toHaveLength(h.fleet.vehicles.length);
  });
});

describe('Geotab simulator: Get, GetVersion, ExecuteMultiCall', () => {
  it('honours search by id and resultsLimit, and refuses a limit above 50,000 with OverLimitException', async () => {
    const h = await startHarness({ vehicles: 5 });
    h.advance(60_000);
    const credentials = await authenticate(h.sim.url);
    const target = h.fleet.vehicles[3]!.geotabId;
    const one = await rawRpc(h.sim.url, 'Get', { typeName: 'Device', search: { id: target }, credentials });
    expect(one.json.result.map((d: unknown) => deviceSchema.parse(d).id)).toEqual([target]);
    const two = await rawRpc(h.sim.url, 'Get', { typeName: 'Device', resultsLimit: 2, credentials });
    expect(two.json.result).toHaveLength(2);
    const status = await rawRpc(h.sim.url, 'Get', { typeName: 'DeviceStatusInfo', search: { deviceSearch: { id: target } }, credentials });
    expect(status.json.result.map((s: unknown) => deviceStatusInfoSchema.parse(s).device.id)).toEqual([target]);
    // Only the one status served counts as served.
    expect(h.sim.groundTruth.all().map((r) => r.externalDeviceId)).toEqual([target]);
    const diagnostic = await rawRpc(h.sim.url, 'Get', { typeName: 'Diagnostic', search: { id: 'DiagnosticOdometerAdjustmentId' }, credentials });
    expect(diagnostic.json.result).toEqual([{ id: 'DiagnosticOdometerAdjustmentId', name: expect.any(String) }]);
    const tooMany = await rawRpc(h.sim.url, 'Get', { typeName: 'Device', resultsLimit: 50_001, credentials });
    expect(tooMany.json.error.data.type).toBe('OverLimitException');
    expect(tooMany.json.error.message).toBe('Supplied results limit (50001) exceeds maximum limit (50000).');
    const unknownType = await rawRpc(h.sim.url, 'Get', { typeName: 'Zone', credentials });
    expect(unknownType.json.error.data.type).toBe('ArgumentException');
  });

  it('runs an ExecuteMultiCall in order with one credentials, and stops at the failing call with its requestIndex', async () => {
    const h = await startHarness({ vehicles: 3 });
    h.advance(60_000);
    const credentials = await authenticate(h.sim.url);
    const ok = await rawRpc(h.sim.url, 'ExecuteMultiCall', {
      calls: [
        { method: 'Get', params: { typeName: 'Device' } },
        { method: 'GetVersion' },
        { method: 'GetFeed', params: { typeName: 'LogRecord', resultsLimit: 5 } },
      ],
      credentials,
    });
    const [deviceList, version, feed] = ok.json.result;
    expect(deviceList).toHaveLength(3);
    expect(typeof version).toBe('string');
    expect(feed.data).toHaveLength(5);
    expect(h.sim.groundTruth.all()).toHaveLength(10); // five positions and five speeds

    const failed = await rawRpc(h.sim.url, 'ExecuteMultiCall', {
      calls: [{ method: 'Get', params: { typeName: 'DeviceStatusInfo' } }, { method: 'SetEverything', params: {} }, { method: 'Get', params: { typeName: 'Device' } }],
      credentials,
    });
    expect(failed.json.error.data).toMatchObject({ type: 'MissingMethodException', requestIndex: 1 });
    expect(failed.json.error.code).toBe(-32601);
    // The client received none of it: nothing more counts as served.
    expect(h.sim.groundTruth.all()).toHaveLength(10);
    const unauthenticated = await rawRpc(h.sim.url, 'ExecuteMultiCall', { calls: [{ method: 'GetVersion' }] });
    expect(unauthenticated.json.error.data.type).toBe('InvalidUserException');
  });
});

describe('Geotab simulator: Device and ChargeEvent feeds', () => {
  it('serves the Device feed from no version, then nothing new', async () => {
    const h = await startHarness({ vehicles: 4 });
    const credentials = await authenticate(h.sim.url);
    const first = await rawRpc(h.sim.url, 'GetFeed', { typeName: 'Device', credentials });
    expect(first.json.result.data.map((d: unknown) => deviceSchema.parse(d).id)).toEqual(h.fleet.vehicles.map((v) => v.geotabId));
    h.advance(1000);
    const again = await rawRpc(h.sim.url, 'GetFeed', { typeName: 'Device', fromVersion: first.json.result.toVersion, credentials });
    expect(again.json.result).toEqual({ data: [], toVersion: first.json.result.toVersion });
  });

  it('emits a ChargeEvent when a simulated charge ends, in the documented fields, matching the fleet log', async () => {
    const h = await startHarness({ vehicles: 8, seed: 4, pastMs: 5 * 3600_000 });
    h.advance(4 * 3600_000);
    const credentials = await authenticate(h.sim.url);
    const answer = await rawRpc(h.sim.url, 'GetFeed', { typeName: 'ChargeEvent', credentials });
    const events = (answer.json.result.data as unknown[]).map((e) => chargeEventSchema.parse(e));
    expect(events.length).toBeGreaterThan(0);
    const log = h.fleet.samplesFrom(h.fleet.startSeq);
    for (const event of events) {
      const vehicle = h.fleet.vehicles.findIndex((v) => v.geotabId === event.device.id);
      const kind = h.fleet.vehicles[vehicle]!.kind;
      const startMs = Date.parse(event.startTime);
      const endMs = startMs + timeSpanMs(event.duration!)!;
      expect(event.duration).toMatch(/^(\d+\.)?\d{2}:\d{2}:\d{2}(\.\d{7})?$/);
      const own = log.filter((s) => s.vehicle === vehicle);
      // The charge begins on a `charging` state and ends on the first other state after it.
      expect(own.some((s) => s.signal === 'charging_state' && s.value === 'charging' && s.observedAtMs === startMs)).toBe(true);
      const end = own.find((s) => s.signal === 'charging_state' && s.value !== 'charging' && s.observedAtMs > startMs);
      expect(end?.observedAtMs).toBe(endMs);
      const socBy = (ms: number) => own.filter((s) => s.signal === 'soc_pct' && s.observedAtMs <= ms).at(-1)?.value;
      expect(event.endStateOfCharge).toBe(socBy(endMs));
      expect(event.startStateOfCharge!).toBeLessThan(event.endStateOfCharge!);
      const powers = own.filter((s) => s.signal === 'charge_power_kw' && s.observedAtMs >= startMs && s.observedAtMs <= endMs).map((s) => s.value as number);
      expect(event.peakPowerKw).toBeCloseTo(Math.max(...powers), 3);
      expect(event.energyConsumedKwh!).toBeGreaterThan(0);
      expect(event.chargeType).toBe(kind === 'van' ? 'AC' : 'DC');
      expect(Math.abs(event.location!.y)).toBeLessThanOrEqual(90);
      // What it served, in canonical terms.
      expect(h.sim.servedChargingSessions.get(event.id)).toMatchObject({
        startedAt: new Date(startMs).toISOString(),
        endedAt: new Date(endMs).toISOString(),
        startSocPct: event.startStateOfCharge,
        endSocPct: event.endStateOfCharge,
        energyKwh: event.energyConsumedKwh,
        peakPowerKw: event.peakPowerKw,
        location: { lat: event.location!.y, lon: event.location!.x },
      });
    }
    expect(h.sim.servedChargingSessions.size).toBe(events.length);
  });
});

describe('Geotab simulator: the GetFeed limit', () => {
  it('allows one GetFeed per entity type per second and answers the next with OverLimitException and Retry-After', async () => {
    const h = await startHarness({ vehicles: 3 });
    h.advance(30_000);
    const credentials = await authenticate(h.sim.url);
    const feed = (typeName: string) => rawRpc(h.sim.url, 'GetFeed', { typeName, resultsLimit: 10, credentials });
    const first = await feed('StatusData');
    expect(first.json.result.data.length).toBeGreaterThan(0);
    expect(first.headers.get('x-rate-limit-limit')).toBe('1s');
    expect(Date.parse(first.headers.get('x-rate-limit-reset')!)).toBe(h.now() + 1000);
    const served = h.sim.groundTruth.all().length;

    h.advance(400);
    const refused = await feed('StatusData');
    expect(Object.keys(refused.json.error).sort()).toEqual(['code', 'data', 'message']);
    expect(refused.json.error.data.type).toBe('OverLimitException');
    expect(refused.json.error.message).toBe('API calls quota exceeded. Maximum admitted 1 per 1s.');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(h.sim.groundTruth.all()).toHaveLength(served);
    // Another entity type has its own limit.
    expect((await feed('LogRecord')).json.result).toBeDefined();
    h.advance(600);
    expect((await feed('StatusData')).json.result).toBeDefined();
  });
});
