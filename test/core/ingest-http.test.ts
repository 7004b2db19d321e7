/**
 * POST /internal/v1/ingest over real HTTP: the answer's shape, the body limits (a bad body writes nothing), the
 * service-token guard, and rejections stored and queryable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCore, type TestCore } from '../support/core.ts';
import { countRows, createFleet, update, type TestFleet } from '../support/fleet.ts';

let core: TestCore;
let fleet: TestFleet;
const now = Date.now();

beforeAll(async () => {
  core = await startTestCore();
  fleet = await createFleet(core.db, core.secretKey, { vehicles: 3 });
});
afterAll(async () => {
  await core.close();
});

async function storedRows() {
  return {
    history: await countRows(core.db, 'signal_history'),
    rejections: await countRows(core.db, 'ingest_rejections'),
    snapshot: await countRows(core.db, 'signal_snapshot'),
  };
}

describe('POST /internal/v1/ingest', () => {
  it('answers a result per update and per reading, with reasons only on rejections', async () => {
    const answer = await core.http.service('POST', '/internal/v1/ingest', {
      updates: [
        update(fleet, [
          { signal: 'soc_pct', value: 76.5, observedAt: now - 2000 },
          { signal: 'location', value: { lat: 37.38229, lon: -122.05264 }, observedAt: now - 10_000 },
          { signal: 'charging_state', value: 'charging', observedAt: now - 60_000 },
          { signal: 'soc_pct', value: 'lots', observedAt: now - 1000 },
        ]),
        { workspaceId: fleet.workspaceId, readings: 'none' },
      ],
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      results: [
        {
          index: 0,
          status: 'processed',
          readings: [
            { signal: 'soc_pct', status: 'accepted' },
            { signal: 'location', status: 'accepted' },
            { signal: 'charging_state', status: 'accepted' },
            { signal: 'soc_pct', status: 'rejected', reason: 'invalid_value' },
          ],
        },
        { index: 1, status: 'rejected', reason: 'malformed', readings: [] },
      ],
    });
    const vehicle = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles/${fleet.vehicles[0]!.id}`);
    expect(vehicle.body.signals.soc_pct).toEqual({ value: 76.5, observedAt: new Date(now - 2000).toISOString(), source: 'poll', provider: 'samsara' });
    expect(vehicle.body.signals.location.value).toEqual({ lat: 37.38229, lon: -122.05264 });

    const rejections = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/rejections`);
    expect(rejections.body.items.map((r: { reason: string }) => r.reason).sort()).toEqual(['invalid_value', 'malformed']);
    const invalid = rejections.body.items.find((r: { reason: string }) => r.reason === 'invalid_value');
    expect(invalid).toMatchObject({ signal: 'soc_pct', externalDeviceId: 'dev-0', provider: 'samsara', source: 'poll' });
    expect(invalid.update.readings).toEqual([{ signal: 'soc_pct', value: 'lots', observedAt: new Date(now - 1000).toISOString() }]);
    const byReason = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/rejections?reason=malformed`);
    expect(byReason.body.items).toHaveLength(1);
  });

  it('answers 4xx problems and writes nothing for a body that is not JSON, not an object with updates, or too big', async () => {
    const before = await storedRows();
    const good = update(fleet, [{ signal: 'soc_pct', value: 50, observedAt: now - 500 }]);
    const cases: { body?: unknown; rawBody?: string; contentType?: string; status: number; code: string }[] = [
      { rawBody: '{"updates": [', status: 400, code: 'invalid_json' },
      { rawBody: '', status: 400, code: 'invalid_json' },
      { body: [good], status: 400, code: 'validation_failed' },
      { body: { update: [good] }, status: 400, code: 'validation_failed' },
      { body: { updates: 'all of them' }, status: 400, code: 'validation_failed' },
      { body: null, rawBody: 'null', status: 400, code: 'validation_failed' },
      { rawBody: 'updates=1', contentType: 'application/x-www-form-urlencoded', status: 415, code: 'unsupported_media_type' },
      { body: { updates: Array.from({ length: 5001 }, () => good) }, status: 413, code: 'batch_too_large' },
      { rawBody: `{"updates":[],"pad":"${'x'.repeat(9 * 1024 * 1024)}"}`, status: 413, code: 'payload_too_large' },
    ];
    for (const c of cases) {
      const answer = await core.http.request('POST', '/internal/v1/ingest', {
        token: core.serviceToken,
        body: c.body,
        rawBody: c.rawBody,
        contentType: c.contentType,
      });
      expect(answer.status, JSON.stringify(c).slice(0, 80)).toBe(c.status);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.body).toMatchObject({ status: c.status, code: c.code, type: `urn:fleetwire:problem:${c.code}` });
    }
    expect(await storedRows()).toEqual(before);
  });

  it('judges an update carrying a prototype-polluting key malformed on its own, and its neighbours as usual', async () => {
    const good = (value: number, vehicle: number) => JSON.stringify(update(fleet, [{ signal: 'soc_pct', value, observedAt: now - 300 }], { vehicle }));
    const poisoned = [
      // In a reading's value, at the update's top, in unicode escapes, and the constructor.prototype route.
      good(41, 0).replace('"value":41', '"value":{"__proto__":{"polluted":true}}'),
      good(42, 0).replace('{"workspaceId"', '{"\\u005f\\u005fproto__":{"polluted":true},"workspaceId"'),
      good(43, 0).replace('{"workspaceId"', '{"constructor":{"prototype":{"polluted":true}},"workspaceId"'),
    ];
    const rawBody = `{"updates":[${good(61, 1)},${poisoned.join(',')},${good(62, 2)}]}`;
    const malformedStored = async () => {
      const page = (await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/rejections?reason=malformed`)).body.items as { count: number }[];
      return page.reduce((n, r) => n + r.count, 0);
    };
    const storedBefore = await malformedStored();
    const answer = await core.http.request('POST', '/internal/v1/ingest', { token: core.serviceToken, rawBody });
    expect(answer.status).toBe(200);
    expect(answer.body.results.map((r: { status: string; reason?: string }) => r.reason ?? r.status)).toEqual(['processed', 'malformed', 'malformed', 'malformed', 'processed']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const snapshot = (v: number) => core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles/${fleet.vehicles[v]!.id}`);
    expect((await snapshot(1)).body.signals.soc_pct.value).toBe(61);
    expect((await snapshot(2)).body.signals.soc_pct.value).toBe(62);
    // The three are one cause (malformed, naming no connection or device the envelope could vouch for): counted on
    // one row of the hour, which keeps the last of them as its example.
    const rejections = (await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/rejections?reason=malformed`)).body.items;
    expect(await malformedStored()).toBe(storedBefore + 3);
    expect(rejections[0].detail).toMatch(/prototype, at constructor\b/);
    for (const r of rejections) expect(JSON.stringify(r.update)).not.toMatch(/__proto__|"prototype"/);
  });

  it('answers 415 to a body that is not JSON by its media type, even when it would parse', async () => {
    const body = JSON.stringify({ updates: [update(fleet, [{ signal: 'soc_pct', value: 5, observedAt: now - 200 }])] });
    for (const contentType of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded']) {
      const ingest = await core.http.request('POST', '/internal/v1/ingest', { token: core.serviceToken, rawBody: body, contentType });
      expect(ingest, contentType).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } });
      const admin = await core.http.request('POST', '/v1/workspaces', { token: core.adminToken, rawBody: '{"name":"Plain depot"}', contentType });
      expect(admin, contentType).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } });
    }
    const missing = await core.http.request('POST', '/v1/workspaces', { token: core.adminToken, rawBody: '{"name":"Bare depot"}', contentType: null });
    expect(missing.status).toBe(415);
  });

  it('refuses a prototype-polluting key in an admin body with a problem that says so', async () => {
    const answer = await core.http.request('POST', '/v1/workspaces', { token: core.adminToken, rawBody: '{"name":"Proto depot","__proto__":{"admin":true}}' });
    expect(answer).toMatchObject({ status: 400, body: { code: 'forbidden_key' } });
    expect(answer.body.detail).toMatch(/__proto__/);
    const broken = await core.http.request('POST', '/v1/workspaces', { token: core.adminToken, rawBody: '{"name":' });
    expect(broken).toMatchObject({ status: 400, body: { code: 'invalid_json' } });
  });

  it('marks every JSON answer nosniff, and tenant data and problems no-store', async () => {
    const list = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles`);
    expect(list.headers.get('x-content-type-options')).toBe('nosniff');
    expect(list.headers.get('cache-control')).toBe('no-store');
    const problem = await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles/00000000-0000-4000-8000-000000000000`);
    expect(problem.status).toBe(404);
    expect(problem.headers.get('x-content-type-options')).toBe('nosniff');
    expect(problem.headers.get('cache-control')).toBe('no-store');
    const ingest = await core.http.service('POST', '/internal/v1/ingest', { updates: [] });
    expect(ingest.headers.get('cache-control')).toBe('no-store');
    const health = await core.http.request('GET', '/healthz');
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('accepts exactly 5,000 updates in one batch', async () => {
    const updates = Array.from({ length: 5000 }, (_, i) =>
      update(fleet, [{ signal: 'speed_kph', value: i % 100, observedAt: now - 3_600_000 + i * 100 }], { vehicle: i % 3 }),
    );
    const answer = await core.http.service('POST', '/internal/v1/ingest', { updates });
    expect(answer.status).toBe(200);
    expect(answer.body.results).toHaveLength(5000);
    expect(answer.body.results.every((r: { status: string }) => r.status === 'processed')).toBe(true);
  });

  it('is guarded by the service token', async () => {
    const body = { updates: [update(fleet, [{ signal: 'soc_pct', value: 1, observedAt: now }])] };
    const none = await core.http.request('POST', '/internal/v1/ingest', { body });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await core.http.request('POST', '/internal/v1/ingest', { body, token: 'not-a-token-of-ours-at-all-xx' });
    expect(wrong).toMatchObject({ status: 401, body: { code: 'invalid_token' } });
    const admin = await core.http.request('POST', '/internal/v1/ingest', { body, token: core.adminToken });
    expect(admin).toMatchObject({ status: 403, body: { code: 'forbidden' } });
  });

  it('counts ingest outcomes by status and reason in /metrics', async () => {
    const metrics = await core.http.request('GET', '/metrics', { token: core.serviceToken });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/fleetwire_ingest_readings_total\{status="rejected",reason="invalid_value"\} \d+/);
    expect(metrics.text).toMatch(/fleetwire_ingest_updates_total\{status="rejected",reason="malformed"\} \d+/);
    expect((await core.http.request('GET', '/metrics')).status).toBe(401);
  });
});
