/**
 * Configuration: validated at start with messages that name the variable; secrets generated only for the embedded
 * demo and core on the embedded database, kept; everything else refuses to start without the secrets it needs.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'fleetwire-config-'));

describe('loadConfig', () => {
  it('refuses private webhook targets by default, allows them for the demo, and takes the setting either way', () => {
    const dir = tempDir();
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir }).webhooks).toEqual({ allowPrivate: false, timeoutMs: 10_000 });
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'demo').webhooks.allowPrivate).toBe(true);
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir, FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE: 'false' }, 'demo').webhooks.allowPrivate).toBe(false);
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir, FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE: 'true', FLEETWIRE_WEBHOOK_TIMEOUT_MS: '2500' }).webhooks).toEqual({ allowPrivate: true, timeoutMs: 2500 });
    expect(() => loadConfig({ FLEETWIRE_DATA_DIR: dir, FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE: 'yes' })).toThrow(/FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE: must be true or false/);
  });

  it('publishes to NATS only with FLEETWIRE_NATS_URL, takes credentials out of the addresses, and checks names', () => {
    const dir = tempDir();
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir }).nats).toEqual({ connection: undefined, stream: 'FLEETWIRE_EVENTS', subjectPrefix: 'fleetwire' });
    const given = loadConfig({
      FLEETWIRE_DATA_DIR: dir,
      FLEETWIRE_NATS_URL: 'nats://fleet%40ops:p%3Ass@nats-a.internal:4223, nats://fleet%40ops:p%3Ass@nats-b.internal',
      FLEETWIRE_NATS_STREAM: 'FW_EVENTS',
      FLEETWIRE_NATS_SUBJECT_PREFIX: 'acme.fleetwire',
    }).nats;
    expect(given).toEqual({
      connection: { servers: ['nats-a.internal:4223', 'nats-b.internal:4222'], user: 'fleet@ops', password: 'p:ss', token: undefined },
      stream: 'FW_EVENTS',
      subjectPrefix: 'acme.fleetwire',
    });
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir, FLEETWIRE_NATS_URL: 's3cr3t-token@127.0.0.1' }).nats.connection).toEqual({ servers: ['127.0.0.1:4222'], user: undefined, password: undefined, token: 's3cr3t-token' });
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig({ FLEETWIRE_DATA_DIR: dir, ...env });
      } catch (error) {
        return (error as ConfigError).problems.join('\n');
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(refused({ FLEETWIRE_NATS_URL: 'http://user:hunter2@127.0.0.1:4222' })).toMatch(/^FLEETWIRE_NATS_URL: server 1 must be nats:\/\/host:port/);
    expect(refused({ FLEETWIRE_NATS_URL: 'nats://a:hunter2@127.0.0.1,nats://b:hunter2@127.0.0.2' })).toMatch(/same credentials/);
    expect(refused({ FLEETWIRE_NATS_URL: 'nats://a:hunter2@127.0.0.1,nats://b:hunter2@127.0.0.2' })).not.toContain('hunter2');
    expect(refused({ FLEETWIRE_NATS_URL: ' , ' })).toMatch(/at least one server/);
    expect(refused({ FLEETWIRE_NATS_URL: 'nats://user:hunter2%zz@127.0.0.1' })).toMatch(/not valid percent-encoding/);
    expect(refused({ FLEETWIRE_NATS_SUBJECT_PREFIX: 'fleet.>' })).toMatch(/^FLEETWIRE_NATS_SUBJECT_PREFIX: must be NATS subject tokens/);
    expect(refused({ FLEETWIRE_NATS_SUBJECT_PREFIX: 'fleet..wire' })).toMatch(/FLEETWIRE_NATS_SUBJECT_PREFIX/);
    expect(refused({ FLEETWIRE_NATS_STREAM: 'events.all' })).toMatch(/^FLEETWIRE_NATS_STREAM: must be letters, digits/);
  });

  it('applies defaults, generates the three secrets once and keeps them in the data dir (0600)', () => {
    const dir = tempDir();
    const first = loadConfig({ FLEETWIRE_DATA_DIR: dir });
    expect(first.port).toBe(8080);
    expect(first.database).toEqual({ kind: 'pglite', dataDir: join(dir, 'pgdata') });
    expect(first.secrets.generated).toEqual(['adminToken', 'serviceToken', 'secretKey']);
    expect(first.secrets.secretKey).toHaveLength(32);
    expect(statSync(join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);

    const second = loadConfig({ FLEETWIRE_DATA_DIR: dir });
    expect(second.secrets.generated).toEqual([]);
    expect(second.secrets.adminToken).toBe(first.secrets.adminToken);
    expect(second.secrets.serviceToken).toBe(first.secrets.serviceToken);
    expect(second.secrets.secretKey.equals(first.secrets.secretKey)).toBe(true);
    expect(Object.isFrozen(second)).toBe(true);
  });

  it('takes secrets from the environment and never writes those to disk', () => {
    const dir = tempDir();
    const adminToken = 'admin-token-from-the-environment-0001';
    const config = loadConfig({
      FLEETWIRE_DATA_DIR: dir,
      FLEETWIRE_ADMIN_TOKEN: adminToken,
      FLEETWIRE_SECRET_KEY: 'a'.repeat(64),
      FLEETWIRE_PORT: '9099',
    });
    expect(config.secrets.adminToken).toBe(adminToken);
    expect(config.secrets.generated).toEqual(['serviceToken']);
    expect(config.coreUrl).toBe('http://127.0.0.1:9099');
    const stored = readFileSync(join(dir, 'secrets.json'), 'utf8');
    expect(stored).not.toContain(adminToken);
    expect(stored).not.toContain('a'.repeat(64));
  });

  it('generates nothing for core on PostgreSQL: it refuses to start, naming each missing variable', () => {
    const dir = tempDir();
    const postgres = { FLEETWIRE_DATA_DIR: dir, DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' };
    expect(() => loadConfig({ ...postgres, FLEETWIRE_ADMIN_TOKEN: 'admin-token-from-the-environment-0001' }, 'core')).toThrow(ConfigError);
    try {
      loadConfig({ ...postgres, FLEETWIRE_ADMIN_TOKEN: 'admin-token-from-the-environment-0001' }, 'core');
    } catch (error) {
      const problems = (error as ConfigError).problems;
      expect(problems).toHaveLength(2);
      expect(problems[0]).toMatch(/^FLEETWIRE_SERVICE_TOKEN is not set: core on PostgreSQL generates no secrets/);
      expect(problems[1]).toMatch(/^FLEETWIRE_SECRET_KEY is not set/);
    }
    expect(existsSync(join(dir, 'secrets.json'))).toBe(false);

    const given = loadConfig(
      { ...postgres, FLEETWIRE_ADMIN_TOKEN: 'a'.repeat(24), FLEETWIRE_SERVICE_TOKEN: 's'.repeat(24), FLEETWIRE_SECRET_KEY: 'b'.repeat(64) },
      'core',
    );
    expect(given.database).toMatchObject({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test' });
    expect(given.secrets.generated).toEqual([]);
    expect(existsSync(join(dir, 'secrets.json'))).toBe(false);
  });

  it('refuses the stream runtime and the admin commands without their token, and never writes one for them', () => {
    const dir = tempDir();
    expect(() => loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'stream')).toThrow(/FLEETWIRE_SERVICE_TOKEN is not set: the stream runtime needs the service token core was started with/);
    expect(() => loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'admin')).toThrow(/FLEETWIRE_ADMIN_TOKEN is not set: the admin commands need the admin token/);
    expect(existsSync(join(dir, 'secrets.json'))).toBe(false);
    // Commands that need no secret start without any and write nothing.
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'database').secrets.generated).toEqual([]);
    expect(existsSync(join(dir, 'secrets.json'))).toBe(false);

    // On the machine of an embedded core, they read what it generated.
    const embedded = loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'demo');
    const stream = loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'stream');
    expect(stream.secrets.serviceToken).toBe(embedded.secrets.serviceToken);
    expect(stream.secrets.generated).toEqual([]);
    expect(loadConfig({ FLEETWIRE_DATA_DIR: dir }, 'admin').secrets.adminToken).toBe(embedded.secrets.adminToken);
  });

  it('reads the trusted proxies and the stream lease time, and refuses a proxy that is not an address or a range', () => {
    const config = loadConfig({ FLEETWIRE_DATA_DIR: tempDir(), FLEETWIRE_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1,::1', FLEETWIRE_STREAM_LEASE_SECONDS: '12' });
    expect(config.trustedProxies).toEqual(['10.0.0.0/8', '127.0.0.1', '::1']);
    expect(config.stream.leaseSeconds).toBe(12);
    expect(() => loadConfig({ FLEETWIRE_DATA_DIR: tempDir(), FLEETWIRE_TRUSTED_PROXIES: 'lb.internal' })).toThrow(/FLEETWIRE_TRUSTED_PROXIES: must be a comma-separated list of IP addresses or CIDR ranges/);
    expect(() => loadConfig({ FLEETWIRE_DATA_DIR: tempDir(), FLEETWIRE_TRUSTED_PROXIES: '10.0.0.0/33' })).toThrow(/FLEETWIRE_TRUSTED_PROXIES/);
  });

  it('lists every problem at once, naming the variable and what it must be', () => {
    const dir = tempDir();
    let error: unknown;
    try {
      loadConfig({
        FLEETWIRE_DATA_DIR: dir,
        FLEETWIRE_PORT: 'eighty',
        DATABASE_URL: 'mysql://localhost/db',
        FLEETWIRE_ADMIN_TOKEN: 'short',
        FLEETWIRE_SECRET_KEY: 'not-32-bytes',
        FLEETWIRE_LOG_LEVEL: 'loud',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/FLEETWIRE_PORT: must be a port number/);
    expect(message).toMatch(/DATABASE_URL: must start with postgres:\/\//);
    expect(message).toMatch(/FLEETWIRE_ADMIN_TOKEN: must be at least 24 characters/);
    expect(message).toMatch(/FLEETWIRE_SECRET_KEY: must be 32 bytes/);
    expect(message).toMatch(/FLEETWIRE_LOG_LEVEL/);
    expect((error as ConfigError).problems).toHaveLength(5);
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ FLEETWIRE_DATA_DIR: tempDir(), DATABASE_URL: '', FLEETWIRE_PORT: '' });
    expect(config.database.kind).toBe('pglite');
    expect(config.port).toBe(8080);
  });
});
