/**
 * Geotab's official JavaScript client, mg-api-js 3.0.3, run unmodified against our simulator: Authenticate,
 * GetFeed of StatusData, LogRecord and ChargeEvent, Get of Device and DeviceStatusInfo, and its re-authentication
 * when the simulator ends the session (lib/ApiHelper.js: on InvalidUserException it authenticates again and repeats
 * the call).
 *
 * How mg-api-js reaches a server (lib/HttpCall.js, the same in dist/api.min.js): always `https://<path>/apiv1/`,
 * and in Node it passes only the URL's hostname to https.request, so a port in `path` is dropped and the request
 * goes to 443 through https.globalAgent. So the simulator serves TLS with a self-signed certificate made here with
 * the openssl CLI, and, for this test file only, https.globalAgent is an agent that trusts that certificate and
 * connects to the simulator's port. Nothing of mg-api-js is patched.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TcpNetConnectOpts } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chargeEventSchema, deviceSchema, deviceStatusInfoSchema, logRecordSchema, statusDataSchema } from '../../../src/providers/geotab/wire.ts';
import { login, startHarness, stopAll } from './harness.ts';

/** The part of mg-api-js's GeotabApi this test uses (the package ships no types). */
interface GeotabApi {
  authenticate(): Promise<{ credentials: { database: string; sessionId: string; userName: string }; path: string }>;
  call(method: string, params: Record<string, unknown>): Promise<any>;
}
type GeotabApiConstructor = new (
  authentication: { credentials: { database: string; userName: string; password: string }; path: string },
  options: { rememberMe?: boolean; timeout?: number },
) => GeotabApi;

const GeotabApiClass = createRequire(import.meta.url)('mg-api-js') as GeotabApiConstructor;

let certDir: string;
let tls: { key: string; cert: string };
const originalAgent = https.globalAgent;

beforeAll(() => {
  certDir = mkdtempSync(join(tmpdir(), 'fleetwire-geotab-tls-'));
  const key = join(certDir, 'key.pem');
  const cert = join(certDir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  tls = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
});

afterEach(async () => {
  https.globalAgent = originalAgent;
  await stopAll();
});

afterAll(() => rmSync(certDir, { recursive: true, force: true }));

/** An agent that trusts the test certificate and sends every connection to the simulator's port. */
function agentTo(port: number): https.Agent {
  class SimulatorAgent extends https.Agent {
    override createConnection(options: TcpNetConnectOpts, callback?: (error: Error | null, socket: Duplex) => void): Duplex {
      // createConnection is typed on http.Agent only loosely; https.Agent's is the TLS one.
      const create = https.Agent.prototype.createConnection as unknown as (this: https.Agent, o: TcpNetConnectOpts, cb?: typeof callback) => Duplex;
      return create.call(this, { ...options, port }, callback);
    }
  }
  return new SimulatorAgent({ ca: tls.cert, keepAlive: false });
}

describe('mg-api-js against the Geotab simulator', () => {
  it('authenticates, follows the feeds, gets devices and statuses, and re-authenticates when the session ends', async () => {
    const h = await startHarness({ vehicles: 8, seed: 4, pastMs: 5 * 3600_000, tls });
    // Long enough for charges to end, so the ChargeEvent feed has events.
    h.advance(4 * 3600_000);
    const port = Number(new URL(h.sim.url).port);
    expect(h.sim.url.startsWith('https://127.0.0.1:')).toBe(true);
    https.globalAgent = agentTo(port);

    const api = new GeotabApiClass({ credentials: { ...login }, path: '127.0.0.1' }, { rememberMe: false, timeout: 10 });
    const auth = await api.authenticate();
    expect(auth.path).toBe('ThisServer');
    expect(auth.credentials).toEqual({ database: login.database, sessionId: expect.stringMatching(/^\d+$/), userName: login.userName });

    const statusData = await api.call('GetFeed', { typeName: 'StatusData', resultsLimit: 500 });
    expect(statusData.data).toHaveLength(500);
    expect(statusData.toVersion).toMatch(/^[0-9a-f]{16}$/);
    for (const entity of statusData.data) statusDataSchema.parse(entity);

    const logRecords = await api.call('GetFeed', { typeName: 'LogRecord', resultsLimit: 200 });
    expect(logRecords.data.length).toBeGreaterThan(0);
    for (const entity of logRecords.data) logRecordSchema.parse(entity);

    const chargeEvents = await api.call('GetFeed', { typeName: 'ChargeEvent' });
    expect(chargeEvents.data.length).toBeGreaterThan(0);
    for (const entity of chargeEvents.data) chargeEventSchema.parse(entity);

    const devices = await api.call('Get', { typeName: 'Device' });
    expect(devices.map((d: unknown) => deviceSchema.parse(d).id)).toEqual(h.fleet.vehicles.map((v) => v.geotabId));
    const statuses = await api.call('Get', { typeName: 'DeviceStatusInfo' });
    expect(statuses.length).toBeGreaterThan(0);
    for (const status of statuses) deviceStatusInfoSchema.parse(status);

    // The simulator ends the session: mg-api-js meets InvalidUserException, authenticates and repeats the call.
    h.sim.expireSessions();
    const before = h.sim.served.requests;
    const again = await api.call('Get', { typeName: 'Device' });
    expect(again).toHaveLength(h.fleet.vehicles.length);
    expect(h.sim.served.requests - before).toBe(3);
  });
});
