/**
 * The admin API: workspaces, policy, cutover, connections (credentials encrypted at rest, never returned, never
 * logged), vehicles with device bindings, API keys; and the problems it answers for bad requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptCredentials } from '../../src/core/registry/credentials-cipher.ts';
import { startTestCore, type TestCore } from '../support/core.ts';

let core: TestCore;

beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

async function newWorkspace(name = 'Depot West') {
  const answer = await core.http.admin('POST', '/v1/workspaces', { name });
  expect(answer.status).toBe(201);
  return answer.body as { id: string };
}

describe('workspaces', () => {
  it('creates a workspace with the default policy and cutover core, and lists it', async () => {
    const created = await core.http.admin('POST', '/v1/workspaces', { name: 'Depot North' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Depot North',
      policy: { enabled: true, pollIntervalSeconds: 60, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600, retentionDays: 90 },
      cutover: { mode: 'core' },
    });
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const list = await core.http.admin('GET', '/v1/workspaces');
    expect(list.body.items.map((w: { id: string }) => w.id)).toContain(created.body.id);
    const one = await core.http.admin('GET', `/v1/workspaces/${created.body.id}`);
    expect(one.body).toEqual(created.body);
  });

  it('sets the telematics policy and the cutover, and refuses bad ones with a problem', async () => {
    const ws = await newWorkspace();
    const policy = { enabled: false, pollIntervalSeconds: 30, freshnessThresholdSeconds: 120, silentAfterSeconds: 1800, retentionDays: 30 };
    const put = await core.http.admin('PUT', `/v1/workspaces/${ws.id}/telematics-policy`, policy);
    expect(put.status).toBe(200);
    expect(put.body.policy).toMatchObject(policy);

    const bad = await core.http.admin('PUT', `/v1/workspaces/${ws.id}/telematics-policy`, { ...policy, pollIntervalSeconds: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation_failed');
    expect(bad.body.errors[0].path).toMatch(/pollIntervalSeconds/);
    const silentBeforeStale = await core.http.admin('PUT', `/v1/workspaces/${ws.id}/telematics-policy`, { ...policy, silentAfterSeconds: 60 });
    expect(silentBeforeStale).toMatchObject({ status: 400, body: { code: 'invalid_policy' } });
    const missing = await core.http.admin('PUT', `/v1/workspaces/${ws.id}/telematics-policy`, { enabled: true });
    expect(missing.status).toBe(400);

    const cutover = await core.http.admin('PUT', `/v1/workspaces/${ws.id}/cutover`, { mode: 'legacy' });
    expect(cutover.body.cutover.mode).toBe('legacy');
    const wrongMode = await core.http.admin('PUT', `/v1/workspaces/${ws.id}/cutover`, { mode: 'both' });
    expect(wrongMode.status).toBe(400);
    const nowhere = await core.http.admin('PUT', '/v1/workspaces/00000000-0000-4000-8000-000000000000/cutover', { mode: 'core' });
    expect(nowhere).toMatchObject({ status: 404, body: { code: 'workspace_not_found' } });
  });
});

describe('connections', () => {
  it('stores credentials encrypted, never returns them and never logs them', async () => {
    const ws = await newWorkspace();
    const secret = 'sam-token-7f3a9c-never-show-me';
    const created = await core.http.admin('POST', `/v1/workspaces/${ws.id}/connections`, {
      provider: 'samsara',
      transport: 'poll',
      credentials: { apiToken: secret },
      label: 'Samsara main',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ provider: 'samsara', transport: 'poll', baseUrl: 'https://api.samsara.com', label: 'Samsara main', enabled: true });
    expect(created.text).not.toContain(secret);
    expect(created.body).not.toHaveProperty('credentials');

    const list = await core.http.admin('GET', `/v1/workspaces/${ws.id}/connections`);
    expect(list.text).not.toContain(secret);

    const { rows } = await core.db.query<{ credentials_ciphertext: string }>(
      'SELECT credentials_ciphertext FROM provider_connections WHERE id = $1',
      [created.body.id],
    );
    const stored = rows[0]!.credentials_ciphertext;
    expect(stored).not.toContain(secret);
    expect(stored).toMatch(/^v1\./);
    expect(decryptCredentials(core.secretKey, { workspaceId: ws.id, connectionId: created.body.id }, stored)).toEqual({ apiToken: secret });
    // Bound to its row: the same ciphertext does not open under another connection's identity.
    expect(() => decryptCredentials(core.secretKey, { workspaceId: ws.id, connectionId: ws.id }, stored)).toThrow();

    const rotated = 'sam-token-rotated-2b8e-never-show';
    const patched = await core.http.admin('PATCH', `/v1/workspaces/${ws.id}/connections/${created.body.id}`, {
      credentials: { apiToken: rotated },
      enabled: false,
    });
    expect(patched.status).toBe(200);
    expect(patched.body.enabled).toBe(false);
    expect(patched.text).not.toContain(rotated);

    const logs = core.logs.join('\n');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(rotated);
  });

  it('refuses unknown providers, wrong transports, bad credentials and missing base URLs, naming fields but not values', async () => {
    const ws = await newWorkspace();
    const post = (body: unknown) => core.http.admin('POST', `/v1/workspaces/${ws.id}/connections`, body);
    expect((await post({ provider: 'acme', transport: 'poll', credentials: {} })).body.code).toBe('unknown_provider');
    expect((await post({ provider: 'samsara', transport: 'stream', credentials: { apiToken: 'x' } })).body.code).toBe('unsupported_transport');
    const badCredentials = await post({ provider: 'geotab', transport: 'poll', credentials: { database: 'acme', userName: 'bob', passwort: 'hunter2-secret' } });
    expect(badCredentials).toMatchObject({ status: 400, body: { code: 'invalid_credentials' } });
    expect(badCredentials.text).not.toContain('hunter2-secret');
    expect((await post({ provider: 'traccar', transport: 'stream', credentials: { token: 't' } })).body.code).toBe('invalid_base_url');
    expect((await post({ provider: 'traccar', transport: 'stream', baseUrl: 'ftp://x', credentials: { token: 't' } })).body.code).toBe('invalid_base_url');
    const ok = await post({ provider: 'traccar', transport: 'stream', baseUrl: 'http://127.0.0.1:8082/', credentials: { token: 't' } });
    expect(ok.status).toBe(201);
    expect(ok.body.baseUrl).toBe('http://127.0.0.1:8082');
    const removed = await core.http.admin('DELETE', `/v1/workspaces/${ws.id}/connections/${ok.body.id}`);
    expect(removed.status).toBe(204);
    expect((await core.http.admin('GET', `/v1/workspaces/${ws.id}/connections/${ok.body.id}`)).status).toBe(404);
  });
});

describe('vehicles', () => {
  it('registers vehicles with devices, refuses a device bound twice, renames and deactivates', async () => {
    const ws = await newWorkspace();
    const connection = (await core.http.admin('POST', `/v1/workspaces/${ws.id}/connections`, { provider: 'samsara', transport: 'poll', credentials: { apiToken: 'x' } })).body;
    const created = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, {
      name: 'Bus 7',
      vin: 'WEB12345678901234',
      devices: [{ connectionId: connection.id, externalId: '212014918732717' }],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Bus 7',
      vin: 'WEB12345678901234',
      active: true,
      devices: [{ connectionId: connection.id, externalId: '212014918732717', provider: 'samsara' }],
      signals: {},
      lastSyncedAt: null,
    });

    const twice = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, {
      name: 'Bus 8',
      devices: [{ connectionId: connection.id, externalId: '212014918732717' }],
    });
    expect(twice).toMatchObject({ status: 409, body: { code: 'device_already_bound' } });
    // The failed create left no half-made vehicle behind.
    const list = await core.http.admin('GET', `/v1/workspaces/${ws.id}/vehicles`);
    expect(list.body.items.map((v: { name: string }) => v.name)).toEqual(['Bus 7']);

    const sameVin = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, { name: 'Bus 9', vin: 'WEB12345678901234' });
    expect(sameVin).toMatchObject({ status: 409, body: { code: 'vin_taken' } });
    const foreignConnection = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, {
      name: 'Bus 10',
      devices: [{ connectionId: '00000000-0000-4000-8000-000000000000', externalId: 'x' }],
    });
    expect(foreignConnection).toMatchObject({ status: 400, body: { code: 'unknown_connection' } });

    const patched = await core.http.admin('PATCH', `/v1/workspaces/${ws.id}/vehicles/${created.body.id}`, { name: 'Bus 7 (spare)', active: false });
    expect(patched.body).toMatchObject({ name: 'Bus 7 (spare)', active: false });

    const more = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles/${created.body.id}/devices`, {
      devices: [{ connectionId: connection.id, externalId: 'second-gateway' }],
    });
    expect(more.body.devices).toHaveLength(2);
    const unbind = await core.http.admin('DELETE', `/v1/workspaces/${ws.id}/vehicles/${created.body.id}/devices/${connection.id}/second-gateway`);
    expect(unbind.status).toBe(204);
    expect((await core.http.admin('GET', `/v1/workspaces/${ws.id}/vehicles/${created.body.id}`)).body.devices).toHaveLength(1);
  });

  it('answers problems for malformed requests', async () => {
    const ws = await newWorkspace();
    const noName = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, { vin: 'X' });
    expect(noName).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    const extra = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, { name: 'A', colour: 'red' });
    expect(extra.status).toBe(400);
    const controlChars = await core.http.admin('POST', `/v1/workspaces/${ws.id}/vehicles`, { name: 'A\u0000B' });
    expect(controlChars.status).toBe(400);
    const badId = await core.http.admin('GET', `/v1/workspaces/not-a-uuid/vehicles`);
    expect(badId.status).toBe(400);
    const noRoute = await core.http.admin('GET', '/v1/nothing-here');
    expect(noRoute).toMatchObject({ status: 404, body: { code: 'route_not_found' } });
  });
});

describe('api keys', () => {
  it('answers a key once, stores only its hash, reads with it, and revokes it', async () => {
    const ws = await newWorkspace();
    const created = await core.http.admin('POST', `/v1/workspaces/${ws.id}/api-keys`, { name: 'dispatch board' });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const key: string = created.body.key;
    expect(key).toMatch(/^fwk_[0-9a-f]{64}_/);

    const listed = await core.http.admin('GET', `/v1/workspaces/${ws.id}/api-keys`);
    // The secret is everything after the second underscore (base64url may hold underscores of its own).
    expect(listed.text).not.toContain(key.slice('fwk_'.length + 65));
    expect(listed.body.items[0]).toMatchObject({ name: 'dispatch board', revokedAt: null });
    const { rows } = await core.db.query<{ secret_hash: Buffer }>('SELECT secret_hash FROM api_keys WHERE id = $1', [created.body.id]);
    expect(Buffer.from(rows[0]!.secret_hash).toString('utf8')).not.toContain(key.slice('fwk_'.length + 65));

    const read = await core.http.request('GET', `/v1/workspaces/${ws.id}/vehicles`, { token: key });
    expect(read.status).toBe(200);
    const tampered = `${key.slice(0, -2)}${key.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await core.http.request('GET', `/v1/workspaces/${ws.id}/vehicles`, { token: tampered })).status).toBe(401);

    expect((await core.http.admin('DELETE', `/v1/workspaces/${ws.id}/api-keys/${created.body.id}`)).status).toBe(204);
    expect((await core.http.request('GET', `/v1/workspaces/${ws.id}/vehicles`, { token: key })).status).toBe(401);
  });
});

describe('operations', () => {
  it('serves liveness, readiness and the API description without a token', async () => {
    expect((await core.http.request('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await core.http.request('GET', '/readyz')).body).toEqual({ status: 'ready' });
    const spec = await core.http.request('GET', '/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toBe('3.1.0');
    const paths = Object.keys(spec.body.paths);
    for (const path of [
      '/v1/workspaces',
      '/v1/workspaces/{ws}/telematics-policy',
      '/v1/workspaces/{ws}/cutover',
      '/v1/workspaces/{ws}/connections',
      '/v1/workspaces/{ws}/vehicles',
      '/v1/workspaces/{ws}/vehicles/{vehicleId}',
      '/v1/workspaces/{ws}/vehicles/{vehicleId}/history',
      '/v1/workspaces/{ws}/rejections',
      '/v1/workspaces/{ws}/api-keys',
      '/internal/v1/ingest',
    ]) {
      expect(paths).toContain(path);
    }
    // The ingest body is documented with the canonical update schema, signal by signal.
    expect(JSON.stringify(spec.body.paths['/internal/v1/ingest'].post.requestBody)).toContain('odometer_km');
  });
});
