/** Configuration: validated at start with messages that name the variable, secrets generated once and kept. */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'fleetwire-config-'));

describe('loadConfig', () => {
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
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
      FLEETWIRE_PORT: '9099',
    });
    expect(config.secrets.adminToken).toBe(adminToken);
    expect(config.secrets.generated).toEqual(['serviceToken']);
    expect(config.database).toMatchObject({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test' });
    expect(config.coreUrl).toBe('http://127.0.0.1:9099');
    const stored = readFileSync(join(dir, 'secrets.json'), 'utf8');
    expect(stored).not.toContain(adminToken);
    expect(stored).not.toContain('a'.repeat(64));
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
