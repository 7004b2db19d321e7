/**
 * Secrets as processes see them: only the embedded demo (and core on the embedded database) generates any; core
 * on PostgreSQL, the stream runtime and the admin commands refuse to start without theirs, naming the variable; a
 * core whose credential key is not the database's refuses to start, saying so; `fleetwire rotate-key` re-encrypts
 * every connection under a new key, after which only the new key starts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, postgresUrl, withSearchPath, type TestDatabase } from './support/database.ts';
import { freePort, runFleetwire, startFleetwire, type Running } from './support/processes.ts';
import { until } from './support/stream.ts';

const dataDir = () => mkdtempSync(join(tmpdir(), 'fleetwire-secrets-'));

describe('secrets a process needs', () => {
  it('core on PostgreSQL refuses to start without them, naming each, and writes none', async () => {
    const dir = dataDir();
    const result = await runFleetwire(['core'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', FLEETWIRE_DATA_DIR: dir });
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/FLEETWIRE_ADMIN_TOKEN is not set: core on PostgreSQL generates no secrets/);
    expect(result.output).toMatch(/FLEETWIRE_SERVICE_TOKEN is not set/);
    expect(result.output).toMatch(/FLEETWIRE_SECRET_KEY is not set/);
    expect(existsSync(join(dir, 'secrets.json'))).toBe(false);
  });

  it('the stream runtime and the admin commands refuse to start without their token', async () => {
    const dir = dataDir();
    const stream = await runFleetwire(['stream'], { FLEETWIRE_DATA_DIR: dir, FLEETWIRE_CORE_URL: 'http://127.0.0.1:9' });
    expect(stream.code).toBe(1);
    expect(stream.output).toMatch(/FLEETWIRE_SERVICE_TOKEN is not set: the stream runtime needs the service token core was started with/);
    const admin = await runFleetwire(['workspaces', 'list'], { FLEETWIRE_DATA_DIR: dir });
    expect(admin.code).toBe(1);
    expect(admin.output).toMatch(/FLEETWIRE_ADMIN_TOKEN is not set/);
    expect(existsSync(join(dir, 'secrets.json'))).toBe(false);
  });
});

describe('the credential key', () => {
  let database: TestDatabase | undefined;
  const dir = dataDir();
  const oldKey = randomBytes(32).toString('hex');
  const newKey = randomBytes(32).toString('base64');
  const adminToken = `fwa_keys_${randomBytes(16).toString('hex')}`;
  const serviceToken = `fws_keys_${randomBytes(16).toString('hex')}`;
  let env: Record<string, string>;
  let running: Running | undefined;

  beforeAll(async () => {
    env = { FLEETWIRE_DATA_DIR: dir, FLEETWIRE_ADMIN_TOKEN: adminToken, FLEETWIRE_SERVICE_TOKEN: serviceToken, FLEETWIRE_LOG_LEVEL: 'warn', FLEETWIRE_SCHEDULER: 'external' };
    if (backend === 'postgres') {
      database = await createTestDatabase();
      env.DATABASE_URL = withSearchPath(postgresUrl, database.schema!);
      env.FLEETWIRE_JOB_SCHEMA = database.jobSchema;
    }
  });
  afterAll(async () => {
    await running?.stop('SIGKILL');
    await database?.drop();
  });

  async function startCore(key: string): Promise<string> {
    const port = await freePort();
    running = startFleetwire(['core'], { ...env, FLEETWIRE_SECRET_KEY: key, FLEETWIRE_PORT: String(port) });
    const url = `http://127.0.0.1:${port}`;
    await until('core to be ready', async () => {
      if (running!.child.exitCode !== null) throw new Error(`core exited:\n${running!.output()}`);
      return fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    }, 60_000);
    return url;
  }

  const call = (url: string, token: string, method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as any }),
    );

  it('is recorded by the first core; a core with another key refuses to start; rotation moves every connection to a new key', async () => {
    let url = await startCore(oldKey);
    const ws = (await call(url, adminToken, 'POST', '/v1/workspaces', { name: 'Keyed depot' })).body.id;
    const connection = (await call(url, adminToken, 'POST', `/v1/workspaces/${ws}/connections`, { provider: 'traccar', transport: 'stream', baseUrl: 'http://127.0.0.1:9', credentials: { token: 'keyed-traccar-token' } })).body;
    expect(await running!.stop('SIGTERM')).toBe(0);

    const refused = await runFleetwire(['core'], { ...env, FLEETWIRE_SECRET_KEY: newKey, FLEETWIRE_PORT: String(await freePort()) });
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/FLEETWIRE_SECRET_KEY is not the key this database's provider credentials are encrypted with/);

    const noNewKey = await runFleetwire(['rotate-key'], { ...env, FLEETWIRE_SECRET_KEY: oldKey });
    expect(noNewKey.code).toBe(1);
    expect(noNewKey.output).toMatch(/FLEETWIRE_NEW_SECRET_KEY is not set/);
    const rotated = await runFleetwire(['rotate-key'], { ...env, FLEETWIRE_SECRET_KEY: oldKey, FLEETWIRE_NEW_SECRET_KEY: newKey });
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.output)).toMatchObject({ reencrypted: 1, unreadable: [] });
    expect(rotated.output).not.toContain('keyed-traccar-token');

    const stale = await runFleetwire(['core'], { ...env, FLEETWIRE_SECRET_KEY: oldKey, FLEETWIRE_PORT: String(await freePort()) });
    expect(stale.code).toBe(1);
    url = await startCore(newKey);
    const lease = await call(url, serviceToken, 'POST', '/internal/v1/stream-leases', { holder: 'keys-test', wanted: [connection.id] });
    expect(lease.body.granted).toEqual([expect.objectContaining({ id: connection.id, credentials: { token: 'keyed-traccar-token' } })]);
    expect(await running!.stop('SIGTERM')).toBe(0);
  }, 120_000);
});
