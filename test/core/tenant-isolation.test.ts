/**
 * Tenant isolation and scopes, on every route the API publishes: walked from /openapi.json, so a new route is
 * covered the day it is added. No token → 401; a token of the wrong scope → 403; workspace A's key on
 * workspace B → 404, exactly as if B did not exist; never B's data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';

let core: TestCore;
let a: TestFleet;
let b: TestFleet;
let keyA: string;
let keyB: string;
let keyIdB: string;
let webhookIdB: string;
const publicRoutes = new Set(['GET /healthz', 'GET /readyz', 'GET /openapi.json']);

beforeAll(async () => {
  core = await startTestCore();
  a = await createFleet(core.db, core.secretKey, { name: 'Depot A', vehicles: 1 });
  b = await createFleet(core.db, core.secretKey, { name: 'Depot B secret name', vehicles: 1 });
  await ingestBatch(core.db, [update(b, [{ signal: 'soc_pct', value: 42.42, observedAt: Date.now() - 1000 }, { signal: 'nonsense', value: 1, observedAt: Date.now() - 1000 }])]);
  keyA = (await core.http.admin('POST', `/v1/workspaces/${a.workspaceId}/api-keys`, { name: 'a' })).body.key;
  const createdB = (await core.http.admin('POST', `/v1/workspaces/${b.workspaceId}/api-keys`, { name: 'b' })).body;
  keyB = createdB.key;
  keyIdB = createdB.id;
  webhookIdB = (await core.http.admin('POST', `/v1/workspaces/${b.workspaceId}/webhooks`, { url: 'http://127.0.0.1:9/b', types: ['fleetwire.vehicle.state.changed'] })).body.id;
  // Nothing listens on its target: paused, so the file's ingest does not leave it retrying throughout.
  await core.http.admin('PATCH', `/v1/workspaces/${b.workspaceId}/webhooks/${webhookIdB}`, { status: 'paused' });
});
afterAll(async () => {
  await core.close();
});

interface Route {
  method: string;
  template: string;
  path: string;
  body: unknown;
}

async function publishedRoutes(): Promise<Route[]> {
  const spec = (await core.http.request('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
  const values: Record<string, string> = {
    ws: b.workspaceId,
    vehicleId: b.vehicles[0]!.id,
    connectionId: b.connectionId,
    keyId: keyIdB,
    webhookId: webhookIdB,
    externalId: b.vehicles[0]!.externalId,
    // Any id: a key of A's is answered for the workspace before any job is looked up.
    jobId: '00000000-0000-4000-8000-000000000000',
  };
  const routes: Route[] = [];
  for (const [template, operations] of Object.entries(spec.paths)) {
    for (const method of Object.keys(operations)) {
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
        const value = values[name];
        if (!value) throw new Error(`no test value for path parameter ${name} in ${template}`);
        return value;
      });
      const upper = method.toUpperCase();
      routes.push({ method: upper, template, path, body: ['POST', 'PUT', 'PATCH'].includes(upper) ? {} : undefined });
    }
  }
  return routes;
}

function leaksB(text: string): boolean {
  return text.includes('Depot B secret name') || text.includes('42.42') || text.includes('VIN0');
}

describe('every published route', () => {
  it('answers 401 without a token (public routes aside) and never data', async () => {
    const routes = await publishedRoutes();
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      if (publicRoutes.has(`${route.method} ${route.template}`)) continue;
      const answer = await core.http.request(route.method, route.path, { body: route.body });
      expect(answer.status, `${route.method} ${route.template}`).toBe(401);
      expect(leaksB(answer.text)).toBe(false);
    }
  });

  it("answers workspace A's key on workspace B with 404 or 403, never B's data", async () => {
    for (const route of await publishedRoutes()) {
      if (publicRoutes.has(`${route.method} ${route.template}`)) continue;
      const answer = await core.http.request(route.method, route.path, { token: keyA, body: route.body });
      // A workspace key reads its own workspace's GET routes, but for its API keys and webhooks (admin only).
      const adminOnly = route.template.endsWith('/api-keys') || route.template.includes('/webhooks');
      const expected = route.template.startsWith('/v1/workspaces/{ws}') && route.method === 'GET' && !adminOnly ? 404 : 403;
      expect(answer.status, `${route.method} ${route.template}`).toBe(expected);
      expect(leaksB(answer.text), `${route.method} ${route.template}`).toBe(false);
    }
  });

  it('answers the service token on admin and read routes with 403, and the admin token on internal routes with 403', async () => {
    for (const route of await publishedRoutes()) {
      const name = `${route.method} ${route.template}`;
      if (publicRoutes.has(name)) continue;
      if (route.template.startsWith('/v1/')) {
        const answer = await core.http.request(route.method, route.path, { token: core.serviceToken, body: route.body });
        expect(answer.status, name).toBe(403);
        expect(leaksB(answer.text)).toBe(false);
      }
      if (route.template.startsWith('/internal/')) {
        const answer = await core.http.request(route.method, route.path, { token: core.adminToken, body: route.body });
        expect(answer.status, name).toBe(403);
      }
    }
  });

  it("lets workspace B's own key read B", async () => {
    for (const path of [
      `/v1/workspaces/${b.workspaceId}`,
      `/v1/workspaces/${b.workspaceId}/vehicles`,
      `/v1/workspaces/${b.workspaceId}/vehicles/${b.vehicles[0]!.id}`,
      `/v1/workspaces/${b.workspaceId}/vehicles/${b.vehicles[0]!.id}/history`,
      `/v1/workspaces/${b.workspaceId}/rejections`,
      `/v1/workspaces/${b.workspaceId}/connections`,
    ]) {
      const answer = await core.http.request('GET', path, { token: keyB });
      expect(answer.status, path).toBe(200);
    }
    const vehicles = await core.http.request('GET', `/v1/workspaces/${b.workspaceId}/vehicles`, { token: keyB });
    expect(vehicles.body.items[0].signals.soc_pct.value).toBe(42.42);
    // A's vehicle is not B's, even addressed under B's workspace.
    const crossed = await core.http.request('GET', `/v1/workspaces/${b.workspaceId}/vehicles/${a.vehicles[0]!.id}`, { token: keyB });
    expect(crossed.status).toBe(404);
    const rejections = await core.http.request('GET', `/v1/workspaces/${a.workspaceId}/rejections`, { token: keyA });
    expect(rejections.body.items).toEqual([]);
  });
});
