/**
 * Core's control plane for stream processes: one connection whose credentials cannot be decrypted is reported on
 * that connection and affects no other (nor another tenant); a process sees its own connections and the free ones,
 * paged, without credentials; core ignores the reports and refuses the updates of a process whose lease it no
 * longer has; and a process cut off from core closes its sockets when its leases run out, so no device is ever
 * connected twice for longer than one lease period.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encryptCredentials } from '../../src/core/registry/credentials-cipher.ts';
import { keyFingerprint } from '../../src/core/registry/credential-key.ts';
import { createWorkspace } from '../../src/core/registry/workspaces.ts';
import { createLogger } from '../../src/logging.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { startTraccarSimulator } from '../../src/sim/traccar/simulator.ts';
import { startTestCore } from '../support/core.ts';
import { update } from '../support/fleet.ts';
import { freePort, startFleetwire } from '../support/processes.ts';
import { connectSimulator } from '../support/simulated.ts';
import { connectStreamProvider, pastFastClock, startTestStream, until, useStreamTestCore } from '../support/stream.ts';
import { startSwitchableProxy } from '../support/switchable-proxy.ts';

const quiet = createLogger({ level: 'warn', name: 'control-plane-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const suite = useStreamTestCore();
const stops = suite.stops;

/** Replaces a connection's stored credentials with ones sealed under another key: unreadable here. */
async function sealUnderAnotherKey(connectionId: string, workspaceId: string, credentials: Record<string, unknown>): Promise<void> {
  const foreign = encryptCredentials(randomBytes(32), { workspaceId, connectionId }, credentials);
  await suite.core.db.query('UPDATE provider_connections SET credentials_ciphertext = $2 WHERE id = $1', [connectionId, foreign]);
}

async function connectionHealth(workspaceId: string, connectionId: string) {
  const health = (await suite.core.http.admin('GET', `/v1/workspaces/${workspaceId}/health`)).body;
  return health.connections.find((c: { id: string }) => c.id === connectionId);
}

describe('credentials that cannot be read', () => {
  it('are reported on their connection and hold up no other connection, stream or poll, of any tenant', async () => {
    const clock = pastFastClock();
    const wsA = (await createWorkspace(suite.core.db, { name: 'Unreadable depot' })).id;
    const wsB = (await createWorkspace(suite.core.db, { name: 'Neighbour depot' })).id;
    const ids: { ws: string; id: string }[] = [];
    for (const [i, ws] of [wsA, wsA, wsB].entries()) {
      const fleet = new FleetModel({ seed: 700 + i, vehicles: 2, startMs: clock.startMs, timeScale: 5 });
      const sim = await startTraccarSimulator({ accounts: [{ credentials: { token: `tr-cp-${i}` }, fleet }], now: clock.now, tickMs: 100, keepaliveMs: 500 });
      stops.push(() => sim.stop());
      const c = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: sim.url, token: `tr-cp-${i}`, vehicles: fleet.vehicles });
      ids.push({ ws, id: c.connectionId });
    }
    const [bad, goodA, goodB] = ids as [(typeof ids)[0], (typeof ids)[0], (typeof ids)[0]];
    await sealUnderAnotherKey(bad.id, bad.ws, { token: 'tr-cp-0' });

    const stream = startTestStream({ coreUrl: suite.core.url, serviceToken: suite.core.serviceToken, logger: quiet, holder: 'unreadable-holder' });
    stops.push(() => stream.stop());
    await until('the readable connections to be connected', () => [goodA, goodB].every((c) => stream.status(c.id)?.connected));
    expect(stream.connections.has(bad.id)).toBe(false);
    expect(await connectionHealth(bad.ws, bad.id)).toMatchObject({ status: 'credentials_unreadable', lastError: { class: 'credentials_unreadable' } });
    const listed = (await suite.core.http.admin('GET', `/v1/workspaces/${bad.ws}/connections/${bad.id}`)).body;
    expect(listed.credentialsUnreadableAt).toEqual(expect.any(String));
    // Once marked, it is no longer offered to any stream process.
    const directory = (await suite.core.http.service('GET', '/internal/v1/stream-connections?holder=someone-else')).body;
    expect(directory.items.map((i: { id: string }) => i.id)).not.toContain(bad.id);

    // A poll connection likewise: the run fails as credentials_unreadable, and polling waits for new credentials.
    const samsaraFleet = new FleetModel({ seed: 710, vehicles: 2, startMs: clock.startMs, timeScale: 5 });
    const samsara = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'sam-cp' }, fleet: samsaraFleet }], now: clock.now });
    stops.push(() => samsara.stop());
    const polled = await connectSimulator(suite.core.db, suite.core.secretKey, wsA, { provider: 'samsara', baseUrl: samsara.url, credentials: { apiToken: 'sam-cp' }, externalIds: samsaraFleet.vehicles.map((v) => v.samsaraId) });
    await sealUnderAnotherKey(polled.connectionId, wsA, { apiToken: 'sam-cp' });
    await suite.core.runner.runWorkspace({ workspaceId: wsA, eventId: 'unreadable-1' });
    await suite.core.runner.runWorkspace({ workspaceId: wsA, eventId: 'unreadable-2' });
    const runs = (await suite.core.http.admin('GET', `/v1/workspaces/${wsA}/poll-runs?connectionId=${polled.connectionId}`)).body.items;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'failed', errorClass: 'credentials_unreadable' });
    expect(await connectionHealth(wsA, polled.connectionId)).toMatchObject({ status: 'credentials_unreadable' });

    // Entering the credentials again clears it: the stream connection is taken up, the poll runs.
    await suite.core.http.admin('PATCH', `/v1/workspaces/${bad.ws}/connections/${bad.id}`, { credentials: { token: 'tr-cp-0' } });
    await suite.core.http.admin('PATCH', `/v1/workspaces/${wsA}/connections/${polled.connectionId}`, { credentials: { apiToken: 'sam-cp' } });
    await until('the repaired stream connection to be connected', () => stream.status(bad.id)?.connected, 20_000);
    await suite.core.runner.runWorkspace({ workspaceId: wsA, eventId: 'unreadable-3' });
    expect(await connectionHealth(wsA, polled.connectionId)).toMatchObject({ status: 'ok' });
  }, 60_000);

  it('are not marked by a process whose key is no longer the deployment\'s, which says so in readiness', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Rotated depot' })).id;
    const c = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: 'http://127.0.0.1:1', token: 'tr-rotated', vehicles: [] });
    // The deployment moved to another key; this core still holds the old one.
    await suite.core.db.query(
      `INSERT INTO deployment_settings (name, value) VALUES ('credential_key_fingerprint', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
      [keyFingerprint(randomBytes(32))],
    );
    try {
      await sealUnderAnotherKey(c.connectionId, ws, { token: 'tr-rotated' });
      const answer = (await suite.core.http.service('POST', '/internal/v1/stream-leases', { holder: 'stale-key', wanted: [c.connectionId] })).body;
      expect(answer.unreadable).toEqual([c.connectionId]);
      const { rows } = await suite.core.db.query<{ at: Date | null }>('SELECT credentials_unreadable_at AS at FROM provider_connections WHERE id = $1', [c.connectionId]);
      expect(rows[0]!.at).toBeNull();
      const ready = await suite.core.http.request('GET', '/readyz');
      expect(ready).toMatchObject({ status: 503, body: { code: 'credential_key_mismatch' } });
    } finally {
      await suite.core.db.query(`DELETE FROM deployment_settings WHERE name = 'credential_key_fingerprint'`);
    }
  });
});

describe('the directory and leases', () => {
  it('lists a process its own and the free connections, paged and without credentials', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Paged depot' })).id;
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      ids.push((await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: 'http://127.0.0.1:1', token: `tr-page-secret-${i}`, vehicles: [] })).connectionId);
    }
    const [held, taken] = [ids[0]!, ids[1]!];
    await suite.core.http.service('POST', '/internal/v1/stream-leases', { holder: 'pager', wanted: [held] });
    await suite.core.http.service('POST', '/internal/v1/stream-leases', { holder: 'other', wanted: [taken] });
    const seen: { id: string; lease: { holder: string } | null }[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const query: string = `holder=pager&limit=2${after ? `&after=${after}` : ''}`;
      const page = await suite.core.http.service('GET', `/internal/v1/stream-connections?${query}`);
      expect(page.status).toBe(200);
      expect(page.text).not.toMatch(/tr-page-secret/);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      expect(page.body.total).toBeGreaterThanOrEqual(5);
      seen.push(...page.body.items);
      after = page.body.nextCursor;
      pages += 1;
    } while (after !== null && pages < 20);
    const mine = seen.filter((i) => ids.includes(i.id));
    expect(mine.map((i) => i.id).sort()).toEqual(ids.filter((id) => id !== taken).sort());
    expect(mine.find((i) => i.id === held)!.lease).toMatchObject({ holder: 'pager' });
    expect(pages).toBeGreaterThan(1);
  });

  it('ignores the reports and refuses the updates of a process whose lease moved on', async () => {
    const ws = (await createWorkspace(suite.core.db, { name: 'Fenced depot' })).id;
    const fleet = new FleetModel({ seed: 720, vehicles: 1, startMs: Date.now() - 60_000, timeScale: 1 });
    const c = await connectStreamProvider(suite.core.db, suite.core.secretKey, ws, { provider: 'traccar', baseUrl: 'http://127.0.0.1:1', token: 'tr-fenced', vehicles: fleet.vehicles });
    const testFleet = { workspaceId: ws, connectionId: c.connectionId, provider: 'traccar', vehicles: [{ id: c.vehicles.get(fleet.vehicles[0]!.traccarUniqueId)!, externalId: fleet.vehicles[0]!.traccarUniqueId }] };
    await suite.core.http.service('POST', '/internal/v1/stream-leases', { holder: 'cut-off', wanted: [c.connectionId] });
    // The cut-off process's lease runs out, and another process takes the connection.
    await suite.core.db.query(`UPDATE stream_leases SET expires_at = now() - interval '1 second' WHERE connection_id = $1`, [c.connectionId]);
    const taken = (await suite.core.http.service('POST', '/internal/v1/stream-leases', { holder: 'successor', wanted: [c.connectionId] })).body;
    expect(taken.granted.map((g: { id: string }) => g.id)).toEqual([c.connectionId]);

    const status = (holder: string) => ({ holder, connections: [{ connectionId: c.connectionId, connected: true, sockets: 1, socketsOpen: 1, lastMessageAt: null, lastHeartbeatAt: new Date().toISOString(), connectedSince: null, reconnects: 0, readingsIn: 0, delivered: 0, coalesced: 0, dropped: 0, buffered: 0, badFrames: 0, deadLettered: 0, lastErrorClass: null, lastError: null, lastErrorAt: null, nextReconnectAt: null }] });
    expect((await suite.core.http.service('POST', '/internal/v1/stream-status', status('cut-off'))).body).toEqual({ recorded: 0 });
    expect((await suite.core.http.service('POST', '/internal/v1/stream-status', status('successor'))).body).toEqual({ recorded: 1 });

    const send = (holder: string, value: number) =>
      fetch(`${suite.core.url}/internal/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${suite.core.serviceToken}`, 'content-type': 'application/json', 'fleetwire-stream-holder': holder },
        body: JSON.stringify({ updates: [update(testFleet, [{ signal: 'soc_pct', value, observedAt: Date.now() - 1000 + value }], { source: 'stream' })] }),
      }).then((r) => r.json() as Promise<{ results: { status: string; reason?: string }[] }>);
    expect((await send('cut-off', 1)).results[0]).toMatchObject({ status: 'rejected', reason: 'not_lease_holder' });
    expect((await send('successor', 2)).results[0]).toMatchObject({ status: 'processed' });
  });
});

describe('a stream process cut off from core', () => {
  it('closes its sockets when its lease runs out, so no device is connected twice for longer than one lease period', async () => {
    const leaseSeconds = 6;
    const core = await startTestCore({ streamLeaseTtlSeconds: leaseSeconds });
    stops.push(() => core.close());
    const clock = pastFastClock();
    const fleet = new FleetModel({ seed: 730, vehicles: 3, startMs: clock.startMs, timeScale: 5 });
    const sim = await startTraccarSimulator({ accounts: [{ credentials: { token: 'tr-cutoff' }, fleet }], now: clock.now, tickMs: 100, keepaliveMs: 500 });
    stops.push(() => sim.stop());
    const ws = (await createWorkspace(core.db, { name: 'Cut-off depot' })).id;
    const c = await connectStreamProvider(core.db, core.secretKey, ws, { provider: 'traccar', baseUrl: sim.url, token: 'tr-cutoff', vehicles: fleet.vehicles });
    const proxy = await startSwitchableProxy(Number(new URL(core.url).port));
    stops.push(() => proxy.close());
    const streamProcess = async (name: string, coreUrl: string) => {
      const running = startFleetwire(['stream'], {
        FLEETWIRE_CORE_URL: coreUrl,
        FLEETWIRE_SERVICE_TOKEN: core.serviceToken,
        FLEETWIRE_PORT: String(await freePort()),
        FLEETWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), `fleetwire-${name}-`)),
        FLEETWIRE_LOG_LEVEL: 'warn',
      });
      stops.push(() => running.stop('SIGKILL'));
      return running;
    };
    const holderOf = async () => (await core.db.query<{ holder: string }>('SELECT holder FROM stream_leases WHERE connection_id = $1 AND expires_at > now()', [c.connectionId])).rows[0]?.holder;

    const first = await streamProcess('first', proxy.url);
    const firstHolder = await until('the first process to hold the connection', holderOf, 30_000);
    expect(firstHolder).toContain(`:${first.child.pid}:`);
    await until('its socket', () => sim.openSockets === 1, 15_000);
    const second = await streamProcess('second', core.url);

    await proxy.down();
    // Watch the simulator's sockets until the second process holds the connection and a lease period more.
    let doubleSince: number | null = null;
    let longestDouble = 0;
    let handedOverAt: number | null = null;
    const watchUntil = Date.now() + 6 * leaseSeconds * 1000;
    while (Date.now() < watchUntil && (handedOverAt === null || Date.now() - handedOverAt < 2 * leaseSeconds * 1000)) {
      const open = sim.openSockets;
      if (open >= 2) doubleSince ??= Date.now();
      else doubleSince = null;
      if (doubleSince !== null) longestDouble = Math.max(longestDouble, Date.now() - doubleSince);
      if (handedOverAt === null && (await holderOf())?.includes(`:${second.child.pid}:`)) handedOverAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(handedOverAt, 'the second process took the connection over').not.toBeNull();
    expect(longestDouble).toBeLessThan(leaseSeconds * 1000);
    expect(sim.openSockets).toBe(1);
    await proxy.up();
  }, 120_000);
});
