/**
 * Protection under load and abuse: ingest sheds load with 503 and Retry-After instead of queueing without bound
 * (and the poll runner backs off and finishes), public routes are rate limited per client, a client guessing tokens
 * gets 429 for its further guesses while valid tokens from its address keep working (a load balancer puts every
 * client behind one address), the client address comes from X-Forwarded-For only behind a trusted proxy, and
 * secrets planted in credentials never reach the logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestGate } from '../../src/core/ingest/ingest-gate.ts';
import { createWorkspace } from '../../src/core/registry/workspaces.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { countRows, createFleet, update } from '../support/fleet.ts';
import { connectSimulator, expectStoreMatchesGroundTruth } from '../support/simulated.ts';

describe('ingest under overload', () => {
  const gate = createIngestGate({ concurrency: 1, queueLimit: 1, retryAfterMs: 1000 });
  let core: TestCore;
  let sim: RunningSimulator;
  const fleet = new FleetModel({ seed: 61, vehicles: 3, startMs: Date.now() - 60_000, timeScale: 5 });

  beforeAll(async () => {
    core = await startTestCore({ ingestGate: gate });
    sim = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'busy' }, fleet }] });
  });
  afterAll(async () => {
    await core.close();
    await sim.stop();
  });

  it('answers 503 with Retry-After past the queue, writes nothing for the refused batches, and takes them when retried', async () => {
    const test = await createFleet(core.db, core.secretKey, { vehicles: 1 });
    let release!: () => void;
    const held = gate.run(() => new Promise<void>((resolve) => (release = resolve)));
    const body = (i: number) => ({ updates: [update(test, [{ signal: 'soc_pct', value: 50 + i, observedAt: Date.now() - 10_000 + i }])] });
    const before = await countRows(core.db, 'signal_history');
    const queued = core.http.service('POST', '/internal/v1/ingest', body(0));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await core.http.service('POST', '/internal/v1/ingest', body(1));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toMatchObject({ code: 'overloaded', status: 503 });
    expect(gate.stats.refused).toBeGreaterThanOrEqual(1);
    const metrics = await core.http.request('GET', '/metrics', { token: core.serviceToken });
    expect(metrics.text).toMatch(/fleetwire_ingest_refused_total [1-9]/);
    release();
    await held;
    expect((await queued).status).toBe(200);
    expect(await countRows(core.db, 'signal_history')).toBe(before + 1);
    const retried = await core.http.service('POST', '/internal/v1/ingest', body(1));
    expect(retried.status).toBe(200);
    expect(await countRows(core.db, 'signal_history')).toBe(before + 2);
  });

  it('makes the poll runner back off while ingest is full, then finish the poll with nothing lost', async () => {
    const ws = (await createWorkspace(core.db, { name: 'Busy depot' })).id;
    const connection = await connectSimulator(core.db, core.secretKey, ws, {
      provider: 'samsara',
      baseUrl: sim.url,
      credentials: { apiToken: 'busy' },
      externalIds: fleet.vehicles.map((v) => v.samsaraId),
    });
    // The gate is full (one running, one waiting) for the first 1.5 s of the poll.
    let releaseRunning!: () => void;
    let releaseWaiting!: () => void;
    const running = gate.run(() => new Promise<void>((resolve) => (releaseRunning = resolve)));
    const waiting = gate.run(() => new Promise<void>((resolve) => (releaseWaiting = resolve)));
    const refusedBefore = gate.stats.refused;
    setTimeout(() => {
      releaseRunning();
      setTimeout(() => releaseWaiting(), 10);
    }, 1500);
    await core.runner.runWorkspace({ workspaceId: ws, eventId: 'busy' });
    await Promise.all([running, waiting]);
    expect(gate.stats.refused).toBeGreaterThan(refusedBefore);
    const [run] = (await core.http.admin('GET', `/v1/workspaces/${ws}/poll-runs?limit=1`)).body.items;
    expect(run.status).toBe('succeeded');
    await expectStoreMatchesGroundTruth(core.db, ws, connection, sim.groundTruth, 'busy');
  });
});

describe('abuse', () => {
  let core: TestCore;
  beforeAll(async () => {
    core = await startTestCore();
  });
  afterAll(async () => {
    await core.close();
  });

  it('rate limits public routes per client with 429 and Retry-After', async () => {
    const answers = await Promise.all(Array.from({ length: 160 }, () => core.http.request('GET', '/healthz')));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.body).toMatchObject({ code: 'too_many_requests' });
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(100);
  });

  it('counts only unknown tokens as guesses: after 50 from one address every valid token from it still works', async () => {
    const ws = (await core.http.admin('POST', '/v1/workspaces', { name: 'Shared address depot' })).body.id;
    const key = (await core.http.admin('POST', `/v1/workspaces/${ws}/api-keys`, { name: 'board' })).body.key;
    const answers: number[] = [];
    for (let i = 0; i < 50; i += 1) {
      answers.push((await core.http.request('GET', '/v1/workspaces', { token: `guess-${i}-xxxxxxxxxxxxxxxxxxxxxxxx` })).status);
    }
    expect(answers.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(answers.slice(10)).toEqual(Array(40).fill(429));
    const limited = await core.http.request('GET', '/v1/workspaces', { token: 'guess-51-xxxxxxxxxxxxxxxxxxxxxxxx' });
    expect(limited).toMatchObject({ status: 429, body: { code: 'too_many_requests' } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(30);

    // The same address, valid tokens: the admin's, the service's (stream runtime, scheduler target), a workspace key.
    expect((await core.http.request('GET', '/v1/workspaces', { token: core.adminToken })).status).toBe(200);
    expect((await core.http.request('GET', '/metrics', { token: core.serviceToken })).status).toBe(200);
    expect((await core.http.service('POST', '/internal/v1/ingest', { updates: [] })).status).toBe(200);
    expect((await core.http.request('GET', `/v1/workspaces/${ws}/vehicles`, { token: key })).status).toBe(200);
    // No token at all is not a guess, and is told so.
    expect((await core.http.request('GET', '/v1/workspaces', { token: null })).body).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('limits a guesser behind a trusted proxy by its forwarded address, not the proxy\'s, and believes no one else', async () => {
    const behindProxy = await startTestCore({ trustedProxies: ['127.0.0.1'] });
    const from = (client: string, token: string) =>
      fetch(`${behindProxy.url}/v1/workspaces`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': `${client}, 127.0.0.1` } });
    try {
      for (let i = 0; i < 11; i += 1) await from('203.0.113.7', `guess-${i}-xxxxxxxxxxxxxxxxxxxxxxxx`);
      expect((await from('203.0.113.7', 'guess-12-xxxxxxxxxxxxxxxxxxxxxxxx')).status).toBe(429);
      // Another client through the same proxy is not the guesser.
      expect((await from('203.0.113.8', 'guess-13-xxxxxxxxxxxxxxxxxxxxxxxx')).status).toBe(401);
      expect((await from('203.0.113.8', behindProxy.adminToken)).status).toBe(200);
      expect((await from('203.0.113.7', behindProxy.adminToken)).status).toBe(200);
    } finally {
      await behindProxy.close();
    }

    // Without a trusted proxy the header is not believed: a guesser cannot escape its limit by inventing addresses.
    const direct = await startTestCore();
    try {
      const spoof = (i: number) =>
        fetch(`${direct.url}/v1/workspaces`, { headers: { authorization: `Bearer guess-${i}-xxxxxxxxxxxxxxxxxxxxxxxx`, 'x-forwarded-for': `198.51.100.${i}` } });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i += 1) statuses.push((await spoof(i)).status);
      expect(statuses.slice(10)).toEqual([429, 429]);
    } finally {
      await direct.close();
    }
  });

  it('never writes planted secrets to the logs, whatever fails', async () => {
    const fresh = await startTestCore();
    try {
      const ws = (await fresh.http.admin('POST', '/v1/workspaces', { name: 'Secret depot' })).body.id;
      const planted = {
        samsara: 'planted-samsara-token-4b1d',
        geotab: 'planted-geotab-password-9c2e',
        traccar: 'planted-traccar-token-77aa',
        tesla: 'planted-tesla-token-0f3b',
      };
      const connections = [
        { provider: 'samsara', transport: 'poll', baseUrl: 'http://127.0.0.1:9', credentials: { apiToken: planted.samsara } },
        { provider: 'geotab', transport: 'poll', baseUrl: 'http://127.0.0.1:9', credentials: { database: 'd', userName: 'u', password: planted.geotab } },
        { provider: 'traccar', transport: 'stream', baseUrl: 'http://127.0.0.1:9', credentials: { token: planted.traccar } },
        { provider: 'tessie', transport: 'stream', baseUrl: 'http://127.0.0.1:9', credentials: { accessToken: planted.tesla } },
      ];
      for (const c of connections) expect((await fresh.http.admin('POST', `/v1/workspaces/${ws}/connections`, c)).status).toBe(201);
      // A bad create logs a validation failure; a poll against nothing logs a provider failure.
      await fresh.http.admin('POST', `/v1/workspaces/${ws}/connections`, { provider: 'geotab', transport: 'poll', credentials: { database: 'd', userName: 'u', pasword: planted.geotab } });
      await fresh.runner.runWorkspace({ workspaceId: ws, eventId: 'secrets' });
      // The stream runtime's lease answer carries the decrypted credentials (service token only), and nothing else does.
      const directory = (await fresh.http.service('GET', '/internal/v1/stream-connections?holder=secrets-test')).body;
      const grants = await fresh.http.service('POST', '/internal/v1/stream-leases', { holder: 'secrets-test', wanted: directory.items.map((i: { id: string }) => i.id) });
      expect(grants.text).toContain(planted.traccar);
      expect(JSON.stringify(directory)).not.toContain(planted.traccar);
      const logs = fresh.logs.join('\n');
      expect(logs.length).toBeGreaterThan(0);
      for (const secret of Object.values(planted)) {
        expect(logs).not.toContain(secret);
        const runs = (await fresh.http.admin('GET', `/v1/workspaces/${ws}/poll-runs`)).text;
        expect(runs).not.toContain(secret);
        const listing = (await fresh.http.admin('GET', `/v1/workspaces/${ws}/connections`)).text;
        expect(listing).not.toContain(secret);
      }
      const { rows } = await fresh.db.query<{ credentials_ciphertext: string }>('SELECT credentials_ciphertext FROM provider_connections');
      for (const row of rows) for (const secret of Object.values(planted)) expect(row.credentials_ciphertext).not.toContain(secret);
    } finally {
      await fresh.close();
    }
  });
});
