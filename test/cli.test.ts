/**
 * The `fleetwire` command as a user runs it: `demo` (what npm start runs) starts core and prints its URL and
 * tokens (and its webhook receiver, subscribed once however often it starts), the admin commands work against it,
 * `migrate` applies migrations, SIGTERM stops it cleanly, and a restart keeps the generated secrets and the data.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, postgresUrl, withSearchPath, type TestDatabase } from './support/database.ts';
import { freePort, runFleetwire, startFleetwire } from './support/processes.ts';

let database: TestDatabase | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-cli-'));
  env = { FLEETWIRE_DATA_DIR: dataDir, FLEETWIRE_LOG_LEVEL: 'warn' };
  if (backend === 'postgres') {
    database = await createTestDatabase();
    env.DATABASE_URL = withSearchPath(postgresUrl, database.schema!);
  }
});
afterAll(async () => {
  await database?.drop();
});

describe('fleetwire', () => {
  it('prints usage and fails on an unknown command', async () => {
    const help = await runFleetwire(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.output).toMatch(/usage: fleetwire/);
    const unknown = await runFleetwire(['fly'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toMatch(/unknown command: fly/);
  });

  it('refuses a bad configuration with a message naming the variable', async () => {
    const bad = await runFleetwire(['migrate'], { ...env, FLEETWIRE_PORT: 'x' });
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/FLEETWIRE_PORT: must be a port number/);
  });

  it('migrates, runs the demo, manages it from the CLI, stops on SIGTERM and keeps state across a restart', async () => {
    const migrated = await runFleetwire(['migrate'], env);
    expect(migrated.code).toBe(0);
    expect(migrated.output).toMatch(/applied: 0001_core|schema is current/);

    const port = await freePort();
    const runEnv = { ...env, FLEETWIRE_PORT: String(port), FLEETWIRE_CORE_URL: `http://127.0.0.1:${port}` };
    const demo = startFleetwire(['demo'], runEnv);
    try {
      const [, url] = await demo.waitFor(/is running at (http:\/\/\S+)/, 60_000);
      const [, adminToken] = await demo.waitFor(/admin token:\s+(\S+)/);
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      // The console receiver: subscribed to the South depot's events, as `fleetwire webhooks list` shows.
      const [, receiverUrl, southId] = await demo.waitFor(/Webhook receiver: (http:\/\/127\.0\.0\.1:\d+\/\S*)[\s\S]*webhooks list --workspace (\S+)/);
      const subscribed = await runFleetwire(['webhooks', 'list', '--workspace', southId!, '--json'], runEnv);
      expect(JSON.parse(subscribed.output).items).toMatchObject([{ url: receiverUrl, status: 'active', description: 'demo console receiver' }]);
      // The migrating yard's legacy poller: a process of its own, with its defect, stopped with the demo (below).
      const [, pollerPid] = await demo.waitFor(/Legacy poller: East yard \(migrating\) is polled by a legacy poller \(a process of its own, pid (\d+)/);
      expect(demo.output()).toMatch(/odometer in miles for\s+East \w+ 001 \(Samsara \d+\) and East \w+ 002 \(Samsara \d+\), and every reading 90 s late/);
      expect(() => process.kill(Number(pollerPid), 0)).not.toThrow();

      const created = await runFleetwire(['workspaces', 'create', '--name', 'CLI depot'], runEnv);
      expect(created.code).toBe(0);
      const workspace = JSON.parse(created.output) as { id: string; name: string };
      expect(workspace.name).toBe('CLI depot');

      const credentialsFile = join(env.FLEETWIRE_DATA_DIR!, 'samsara.json');
      writeFileSync(credentialsFile, JSON.stringify({ apiToken: 'cli-secret-token-123' }));
      const optionsFile = join(env.FLEETWIRE_DATA_DIR!, 'samsara-options.json');
      writeFileSync(optionsFile, JSON.stringify({ restartOverlapMinutes: 30 }));
      const connection = await runFleetwire(
        ['connections', 'add', workspace.id, '--provider', 'samsara', '--transport', 'poll', '--credentials-file', credentialsFile, '--options-file', optionsFile],
        runEnv,
      );
      expect(connection.code).toBe(0);
      expect(connection.output).not.toContain('cli-secret-token-123');
      expect(JSON.parse(connection.output)).toMatchObject({ provider: 'samsara', options: { restartOverlapMinutes: 30 } });
      const connectionId = (JSON.parse(connection.output) as { id: string }).id;

      const vehicle = await runFleetwire(['vehicles', 'add', workspace.id, '--name', 'Van 1', '--device', `${connectionId}:sam-1`], runEnv);
      expect(vehicle.code).toBe(0);
      expect(JSON.parse(vehicle.output)).toMatchObject({ name: 'Van 1', devices: [{ externalId: 'sam-1' }] });

      const policy = await runFleetwire(
        ['policy', 'set', workspace.id, '--enabled', 'true', '--poll-interval', '30', '--freshness', '300', '--silent-after', '3600', '--retention-days', '30'],
        runEnv,
      );
      expect(JSON.parse(policy.output).policy.pollIntervalSeconds).toBe(30);
      const cutover = await runFleetwire(['cutover', 'set', workspace.id, 'legacy'], runEnv);
      expect(JSON.parse(cutover.output).cutover.mode).toBe('legacy');
      // Through shadow to core: refused on parity (there is none), forced with a reason, rolled back, all recorded.
      expect(JSON.parse((await runFleetwire(['cutover', 'set', workspace.id, 'shadow'], runEnv)).output).cutover.mode).toBe('shadow');
      expect(JSON.parse((await runFleetwire(['cutover', 'parity', workspace.id, '--window', '24h'], runEnv)).output).gate).toMatchObject({ met: false });
      const gated = await runFleetwire(['cutover', 'set', workspace.id, 'core'], runEnv);
      expect(gated.code).toBe(1);
      expect(gated.output).toMatch(/409 parity_not_met/);
      const forced = await runFleetwire(['cutover', 'set', workspace.id, 'core', '--force', '--reason', 'a CLI test'], runEnv);
      expect(JSON.parse(forced.output).cutover.mode).toBe('core');
      expect(JSON.parse((await runFleetwire(['cutover', 'set', workspace.id, 'legacy'], runEnv)).output).cutover.mode).toBe('legacy');
      const transitions = JSON.parse((await runFleetwire(['cutover', 'transitions', workspace.id], runEnv)).output).items as { from: string; to: string; forced: boolean }[];
      expect(transitions.slice(0, 3).map((t) => [t.from, t.to, t.forced])).toEqual([
        ['core', 'legacy', false],
        ['shadow', 'core', true],
        ['legacy', 'shadow', false],
      ]);
      const key = await runFleetwire(['api-keys', 'create', workspace.id, '--name', 'board'], runEnv);
      expect(JSON.parse(key.output).key).toMatch(/^fwk_/);

      // Health with its reasons, the rejections by cause, and a backfill of the connection's history as a job.
      const health = await runFleetwire(['health', workspace.id], runEnv);
      expect(JSON.parse(health.output)).toMatchObject({ workspaceId: workspace.id, connections: [{ id: connectionId }] });
      expect(JSON.parse((await runFleetwire(['health'], runEnv)).output).items.map((w: { workspaceId: string }) => w.workspaceId)).toContain(workspace.id);
      expect(JSON.parse((await runFleetwire(['rejections', 'list', workspace.id], runEnv)).output)).toMatchObject({ items: expect.any(Array) });
      const from = new Date(Date.now() - 3600_000).toISOString();
      const backfill = await runFleetwire(['connections', 'backfill', workspace.id, connectionId, '--from', from, '--device', 'sam-1'], runEnv);
      expect(backfill.code).toBe(0);
      const job = JSON.parse(backfill.output) as { id: string; devices: string[]; from: string };
      expect(job).toMatchObject({ connectionId, devices: ['sam-1'], trigger: 'request' });
      expect(Date.parse(job.from)).toBe(Date.parse(from));
      const jobs = JSON.parse((await runFleetwire(['backfills', 'list', workspace.id, '--connection', connectionId], runEnv)).output) as { items: { id: string }[] };
      expect(jobs.items.map((j) => j.id)).toContain(job.id);
      expect(JSON.parse((await runFleetwire(['backfills', 'show', workspace.id, job.id], runEnv)).output)).toMatchObject({ id: job.id });
      const noFrom = await runFleetwire(['connections', 'backfill', workspace.id, connectionId], runEnv);
      expect(noFrom.code).toBe(2);
      expect(noFrom.output).toMatch(/missing --from/);
      // An option the command does not know is a usage mistake, said with the usage, not a crash.
      const unknownOption = await runFleetwire(['connections', 'backfill', workspace.id, connectionId, '--form', from], runEnv);
      expect(unknownOption.code).toBe(2);
      expect(unknownOption.output).toMatch(/Unknown option '--form'[\s\S]*usage: fleetwire/);

      // The lifecycle: rename and disable, move an unbound vehicle, delete only when told it is meant.
      const renamed = await runFleetwire(['workspaces', 'update', workspace.id, '--name', 'CLI depot north', '--enabled', 'false'], runEnv);
      expect(JSON.parse(renamed.output)).toMatchObject({ id: workspace.id, name: 'CLI depot north', policy: { enabled: false } });
      const other = JSON.parse((await runFleetwire(['workspaces', 'create', '--name', 'CLI depot south'], runEnv)).output) as { id: string };
      const spare = JSON.parse((await runFleetwire(['vehicles', 'add', workspace.id, '--name', 'Spare van'], runEnv)).output) as { id: string };
      const moved = await runFleetwire(['vehicles', 'move', workspace.id, spare.id, '--to', other.id], runEnv);
      expect(JSON.parse(moved.output)).toMatchObject({ id: spare.id, name: 'Spare van' });
      const bound = await runFleetwire(['vehicles', 'move', workspace.id, (JSON.parse(vehicle.output) as { id: string }).id, '--to', other.id], runEnv);
      expect(bound.code).toBe(1);
      expect(bound.output).toMatch(/409 vehicle_bound/);
      const unsure = await runFleetwire(['workspaces', 'delete', other.id], runEnv);
      expect(unsure.code).toBe(2);
      expect(unsure.output).toMatch(/add --yes/);
      expect((await runFleetwire(['vehicles', 'delete', other.id, spare.id, '--yes'], runEnv)).code).toBe(0);
      expect((await runFleetwire(['workspaces', 'delete', other.id, '--yes'], runEnv)).code).toBe(0);
      const gone = await fetch(`${url}/v1/workspaces/${other.id}`, { headers: { authorization: `Bearer ${adminToken}` } });
      expect(gone.status).toBe(404);
      await runFleetwire(['workspaces', 'update', workspace.id, '--enabled', 'true'], runEnv);

      const wrong = await runFleetwire(['cutover', 'set', workspace.id, 'sideways'], runEnv);
      expect(wrong.code).toBe(1);
      expect(wrong.output).toMatch(/400 validation_failed/);

      expect(await demo.stop('SIGTERM')).toBe(0);
      expect(() => process.kill(Number(pollerPid), 0)).toThrow();

      // A restart keeps the tokens (from the data dir) and the data.
      const again = startFleetwire(['demo'], runEnv);
      try {
        const [, sameToken] = await again.waitFor(/admin token:\s+(\S+)/, 60_000);
        expect(sameToken).toBe(adminToken);
        const list = await fetch(`${url}/v1/workspaces`, { headers: { authorization: `Bearer ${adminToken}` } });
        const body = (await list.json()) as { items: { id: string }[] };
        expect(body.items.map((w) => w.id)).toContain(workspace.id);
        // A new receiver, and its subscription in place of the last start's.
        const [, newReceiverUrl] = await again.waitFor(/Webhook receiver: (\S+)/);
        const resubscribed = await runFleetwire(['webhooks', 'list', '--workspace', southId!, '--json'], runEnv);
        expect(JSON.parse(resubscribed.output).items).toMatchObject([{ url: newReceiverUrl, status: 'active' }]);
      } finally {
        expect(await again.stop('SIGTERM')).toBe(0);
      }
    } finally {
      await demo.stop('SIGKILL');
    }
  }, 120_000);
});
