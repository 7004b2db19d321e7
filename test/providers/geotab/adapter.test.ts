/**
 * The Geotab poll adapter end to end against the simulator over HTTP, with an injected clock: the union of all
 * pages equals what the simulator served (the simulator reports odometers through J1939, OBD, corrected and
 * adjusted diagnostics and charging through IsCharging, as Geotab documents them; it refuses a second GetFeed of a
 * type within a second, so paging only works paced), ChargeEvents arrive as charging sessions with their own feed
 * version, a second poll from the returned cursor yields only new samples, an expired session is renewed
 * transparently, wrong credentials end as `auth`, and each injected fault surfaces as the right ProviderError class.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createGeotabPollAdapter, geotabPollAdapter, readCursor, type GeotabPollPage } from '../../../src/providers/geotab/adapter.ts';
import { geotabContract } from '../../../src/providers/geotab/contract.ts';
import { servedKey } from '../../../src/sim/ground-truth.ts';
import type { ProviderErrorClass } from '../../../src/providers/provider-error.ts';
import type { FaultKind } from '../../../src/sim/faults.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import {
  allDevices,
  collect,
  expectProviderError,
  flatten,
  login,
  pollContext,
  rpcErrorBody,
  sendJson,
  simulatedSleep,
  startHarness,
  startStub,
  stopAll,
  type Harness,
} from './harness.ts';

afterEach(stopAll);

const feedSignals = new Set(['soc_pct', 'odometer_km', 'charging_state', 'ignition', 'battery_temp_c', 'charge_power_kw', 'location', 'speed_kph']);

function adapterFor(h: Harness, options: Parameters<typeof createGeotabPollAdapter>[0] = {}) {
  // Paced on the simulator's clock: the simulator refuses a second GetFeed of a type within its second.
  return createGeotabPollAdapter({ resultsLimit: 40, now: h.now, sleep: simulatedSleep(h), ...options });
}

/** Every reading of the pages, against what the simulator recorded as served since `fromRecord`. */
function expectPagesEqualServed(h: Harness, pages: GeotabPollPage[], fromRecord = 0) {
  const readings = flatten(allDevices(pages));
  const served = h.sim.groundTruth.all().slice(fromRecord);
  expect(readings.length).toBe(served.length);
  const byKey = new Map(readings.map((r) => [r.key, r.value]));
  expect(byKey.size, 'no reading twice in one poll').toBe(readings.length);
  for (const s of served) expect(byKey.get(servedKey(s)), servedKey(s)).toEqual(s.value);
  expectValidReadings(allDevices(pages), { notAfterMs: h.now() });
}

describe('Geotab poll adapter against the simulator', () => {
  it('is the contract of the geotab provider, polled', () => {
    expect(geotabPollAdapter.contract).toBe(geotabContract);
    expect(geotabPollAdapter.contract.transport).toBe('poll');
  });

  it('yields pages whose union equals the ground truth, with the cursor advanced per feed and the requests counted', async () => {
    const h = await startHarness({ vehicles: 10, seed: 11 });
    h.advance(10 * 60_000);
    const adapter = adapterFor(h);
    const pages = await collect(adapter, pollContext(h.sim.url));

    expectPagesEqualServed(h, pages);
    expect(pages.reduce((n, p) => n + p.requests, 0)).toBe(h.sim.served.requests);
    expect(pages[0]!.requests).toBe(2); // Authenticate and the first GetFeed.
    expect(pages.every((p) => p.skipped === 0)).toBe(true);

    // StatusData pages first, then LogRecord pages, then one DeviceStatusInfo page with the cursor unchanged.
    const statusPages = pages.filter((p) => p.cursor.logRecord === undefined);
    expect(statusPages.length).toBeGreaterThan(2);
    const last = pages.at(-1)!;
    const beforeLast = pages.at(-2)!;
    expect(last.cursor).toEqual(beforeLast.cursor);
    expect(flatten(last.devices).every((r) => r.signal === 'heading_deg')).toBe(true);
    const statusVersions = pages.map((p) => p.cursor.statusData!);
    expect([...statusVersions].sort()).toEqual(statusVersions);
    expect(last.cursor.statusData).toMatch(/^[0-9a-f]{16}$/);
    expect(last.cursor.logRecord).toMatch(/^[0-9a-f]{16}$/);

    // Every signal Geotab serves arrives, for devices no one bound (boundDevices is empty).
    const signals = new Set(flatten(allDevices(pages)).map((r) => r.signal));
    expect([...signals].sort()).toEqual([...feedSignals, 'heading_deg'].sort());
    expect(new Set(allDevices(pages).map((d) => d.externalDeviceId))).toEqual(new Set(h.fleet.vehicles.map((v) => v.geotabId)));
  });

  it('reads ChargeEvents into charging sessions, with the ChargeEvent feed version kept apart', async () => {
    const h = await startHarness({ vehicles: 8, seed: 4, pastMs: 5 * 3600_000 });
    h.advance(2 * 3600_000);
    const adapter = adapterFor(h, { resultsLimit: 5000, firstPollLookbackMs: 3 * 3600_000 });
    const session = new Map<string, unknown>();
    const first = await collect(adapter, pollContext(h.sim.url, { session }));
    h.advance(2 * 3600_000);
    const second = await collect(adapter, pollContext(h.sim.url, { session, cursor: first.at(-1)!.cursor }));
    const sessions = [...first, ...second].flatMap((p) => p.devices.flatMap((d) => (d.chargingSessions ?? []).map((s) => ({ device: d.externalDeviceId, ...s }))));
    expect(sessions.length).toBeGreaterThan(0);
    // Each served once, as the simulator computed it, on its vehicle.
    expect(new Set(sessions.map((s) => s.externalId)).size).toBe(sessions.length);
    expect(sessions.map(({ device: _device, ...s }) => s)).toEqual([...h.sim.servedChargingSessions.values()]);
    for (const s of sessions) expect(s.externalId.startsWith('ce')).toBe(true);
    const cursor = second.at(-1)!.cursor;
    expect(Object.keys(cursor).sort()).toEqual(['chargeEvent', 'logRecord', 'statusData']);
    expect(cursor.chargeEvent).toMatch(/^[0-9a-f]{16}$/);
    expect(readCursor(cursor)).toEqual(cursor);
    // ChargeEvent pages carry sessions only.
    expect([...first, ...second].filter((p) => p.devices.some((d) => d.chargingSessions)).every((p) => p.devices.every((d) => d.readings.length === 0))).toBe(true);
  });

  it("reads battery power with the connection's sign option", async () => {
    const h = await startHarness({ vehicles: 8, seed: 4, pastMs: 2 * 3600_000 });
    h.advance(30 * 60_000);
    // One connection's session: its pacing memory spans the polls.
    const session = new Map<string, unknown>();
    const power = async (options: Record<string, unknown>) => {
      const pages = await collect(adapterFor(h, { resultsLimit: 5000 }), pollContext(h.sim.url, { options, session }));
      return flatten(allDevices(pages)).filter((r) => r.signal === 'charge_power_kw');
    };
    // The simulator reports charging as negative watts (the default); read as positive, nothing charges.
    const asDefault = await power({});
    expect(asDefault.some((r) => (r.value as number) > 0)).toBe(true);
    const asPositive = await power({ batteryPowerChargingSign: 'positive' });
    expect(asPositive.length).toBeGreaterThan(0);
    expect(asPositive.every((r) => r.value === 0)).toBe(true);
    await expectProviderError(collect(adapterFor(h), pollContext(h.sim.url, { options: { batteryPowerChargingSign: 'sideways' } })), 'permanent');
  });

  it('goes on without charging sessions when the database refuses the ChargeEvent feed, with a note', async () => {
    const stub = await startStub((body, response) => {
      if (body.method === 'Authenticate') {
        sendJson(response, 200, { result: { credentials: { database: login.database, sessionId: '42', userName: login.userName }, path: 'ThisServer' } });
      } else if (body.method === 'GetFeed' && body.params.typeName === 'ChargeEvent') {
        sendJson(response, 200, rpcErrorBody('ArgumentException', "Type 'ChargeEvent' is not supported"));
      } else if (body.method === 'GetFeed') {
        sendJson(response, 200, { result: { data: [], toVersion: '0000000000000007' } });
      } else sendJson(response, 200, { result: [] });
    });
    const pages = await collect(createGeotabPollAdapter({ resultsLimit: 10 }), pollContext(stub.url));
    expect(pages).toHaveLength(4);
    expect(pages[2]!.notes).toEqual([expect.stringMatching(/^Geotab ChargeEvent feed unavailable, charging sessions skipped: .*ArgumentException/)]);
    expect(pages.at(-1)!.cursor).toEqual({ statusData: '0000000000000007', logRecord: '0000000000000007' });
  });

  it('starts a new connection one hour back, not at the start of history', async () => {
    const h = await startHarness({ vehicles: 10, seed: 5, pastMs: 2 * 3600_000 });
    // The fleet's first readings (and asleep vehicles' last ones, hours before that) end up over an hour old.
    h.advance(65 * 60_000);
    const pages = await collect(adapterFor(h, { resultsLimit: 5000 }), pollContext(h.sim.url));
    const feedReadings = flatten(allDevices(pages)).filter((r) => feedSignals.has(r.signal));
    expect(feedReadings.length).toBeGreaterThan(0);
    for (const r of feedReadings) expect(r.observedAtMs).toBeGreaterThanOrEqual(h.now() - 3600_000);
    // The fleet's log does hold older samples that a version-less feed from the start would have served.
    expect(h.fleet.samplesFrom(h.fleet.startSeq).some((s) => s.observedAtMs < h.now() - 3600_000)).toBe(true);
    expectPagesEqualServed(h, pages);
  });

  it('continues from the returned cursor: the second poll yields only samples logged since the first', async () => {
    const h = await startHarness({ vehicles: 8, seed: 21 });
    h.advance(3 * 60_000);
    const adapter = adapterFor(h);
    const session = new Map<string, unknown>();
    const first = await collect(adapter, pollContext(h.sim.url, { session }));
    const firstKeys = new Set(flatten(allDevices(first)).map((r) => r.key));
    const firstPollAt = h.now();

    // At once again: one page per feed, then the statuses, holding at most what was logged while the adapter
    // waited out the one-GetFeed-per-second limit (on the simulator's clock).
    const idle = await collect(adapter, pollContext(h.sim.url, { session, cursor: first.at(-1)!.cursor }));
    expect(idle).toHaveLength(4);
    for (const r of flatten(allDevices(idle)).filter((r) => feedSignals.has(r.signal))) expect(r.observedAtMs).toBeGreaterThan(firstPollAt);
    expect(h.now() - firstPollAt).toBeLessThanOrEqual(3000);

    h.advance(2 * 60_000);
    const recorded = h.sim.groundTruth.all().length;
    const second = await collect(adapter, pollContext(h.sim.url, { session, cursor: idle.at(-1)!.cursor }));
    expectPagesEqualServed(h, second, recorded);
    const fresh = flatten(allDevices(second)).filter((r) => feedSignals.has(r.signal));
    expect(fresh.length).toBeGreaterThan(0);
    for (const r of fresh) {
      expect(r.observedAtMs).toBeGreaterThan(firstPollAt);
      expect(firstKeys.has(r.key)).toBe(false);
    }
    // The session was reused: no Authenticate in the second poll.
    expect(second.reduce((n, p) => n + p.requests, 0)).toBe(second.length);
  });

  it('renews an expired session once, transparently', async () => {
    const h = await startHarness({ vehicles: 4 });
    h.advance(60_000);
    const adapter = adapterFor(h, { resultsLimit: 5000 });
    const session = new Map<string, unknown>();
    const first = await collect(adapter, pollContext(h.sim.url, { session }));
    const held = session.get('geotab.session');
    h.sim.expireSessions();
    h.advance(60_000);
    const served = h.sim.served.requests;
    const recorded = h.sim.groundTruth.all().length;
    const second = await collect(adapter, pollContext(h.sim.url, { session, cursor: first.at(-1)!.cursor }));
    expectPagesEqualServed(h, second, recorded);
    // One call per page, plus the refused call and the Authenticate, both on the first page.
    expect(second[0]!.requests).toBe(3);
    expect(second.reduce((n, p) => n + p.requests, 0)).toBe(second.length + 2);
    expect(h.sim.served.requests - served).toBe(second.length + 2);
    expect(session.get('geotab.session')).not.toBe(held);
  });

  it('ends with ProviderError auth on wrong credentials, and never says the password', async () => {
    const h = await startHarness();
    const error = await expectProviderError(
      collect(adapterFor(h), pollContext(h.sim.url, { credentials: { ...login, password: 'not-the-password-42' } })),
      'auth',
    );
    expect(error.message).not.toContain('not-the-password-42');
    expect(h.sim.groundTruth.all()).toHaveLength(0);
  });

  it('restarts an unreadable cursor an hour back instead of failing', async () => {
    expect(readCursor({ statusData: 12 })).toEqual({});
    expect(readCursor('garbage')).toEqual({});
    expect(readCursor({ logRecord: '00000000000000ff', other: 1 })).toEqual({ logRecord: '00000000000000ff' });
    const h = await startHarness({ vehicles: 3 });
    h.advance(30_000);
    const pages = await collect(adapterFor(h), pollContext(h.sim.url, { cursor: ['not', 'ours'] }));
    expectPagesEqualServed(h, pages);
  });
});

describe('Geotab poll adapter: faults', () => {
  const cases: { fault: FaultKind; errorClass: ProviderErrorClass; retryAfterMs?: number }[] = [
    { fault: 'server_error', errorClass: 'transient' },
    { fault: 'timeout', errorClass: 'transient' },
    { fault: 'malformed', errorClass: 'malformed_response' },
    { fault: 'truncated', errorClass: 'malformed_response' },
    { fault: 'rate_limit', errorClass: 'rate_limited', retryAfterMs: 30_000 },
  ];

  for (const c of cases) {
    it(`${c.fault} → ${c.errorClass}, after the pages committed before it`, async () => {
      const h = await startHarness({ vehicles: 4, timeoutMs: 150 });
      h.advance(60_000);
      const adapter = adapterFor(h, { resultsLimit: 5000 });
      const session = new Map<string, unknown>();
      const warm = await collect(adapter, pollContext(h.sim.url, { session }));
      h.advance(60_000);
      const pages: GeotabPollPage[] = [];
      // The first GetFeed of the second poll succeeds; the LogRecord one fails.
      let injected = false;
      const poll = (async () => {
        for await (const page of adapter.poll(pollContext(h.sim.url, { session, cursor: warm.at(-1)!.cursor }))) {
          pages.push(page as GeotabPollPage);
          if (!injected) {
            h.sim.faults.queue(c.fault);
            injected = true;
          }
        }
      })();
      const error = await expectProviderError(poll, c.errorClass);
      expect(error.retryAfterMs).toBe(c.retryAfterMs);
      expect(pages).toHaveLength(1);
      expect(pages[0]!.cursor.logRecord).toBe(warm.at(-1)!.cursor.logRecord);
      expect(pages[0]!.cursor.statusData! > warm.at(-1)!.cursor.statusData!).toBe(true);
      expect(h.sim.faults.injected[c.fault]).toBe(1);
    });
  }

  it('times out on its own when the server holds the request longer than the adapter waits', async () => {
    const h = await startHarness({ vehicles: 2, timeoutMs: 10_000 });
    h.sim.faults.queue('timeout');
    const started = Date.now();
    const error = await expectProviderError(collect(adapterFor(h, { timeoutMs: 100 }), pollContext(h.sim.url)), 'transient');
    expect(error.message).toMatch(/no answer within 100 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('recovers from one auth fault by re-authenticating, and ends as auth when Authenticate is refused too', async () => {
    const h = await startHarness({ vehicles: 3 });
    h.advance(30_000);
    const adapter = adapterFor(h, { resultsLimit: 5000 });
    const session = new Map<string, unknown>();
    const warm = await collect(adapter, pollContext(h.sim.url, { session }));
    h.sim.faults.queue('auth');
    const recorded = h.sim.groundTruth.all().length;
    const recovered = await collect(adapter, pollContext(h.sim.url, { session, cursor: warm.at(-1)!.cursor }));
    expectPagesEqualServed(h, recovered, recorded);
    expect(recovered[0]!.requests).toBe(3);

    h.sim.faults.startOutage('auth');
    await expectProviderError(collect(adapter, pollContext(h.sim.url, { session, cursor: recovered.at(-1)!.cursor })), 'auth');
    h.sim.faults.endOutage();
  });
});
