/**
 * `fleetwire webhooks ...` as an operator runs it: the real command against a core on loopback, delivering to a
 * receiver on loopback. A subscription is added (its secret shown once, and it is the one deliveries are signed
 * with), listed with its state and health, paused (events wait), resumed (they go), replayed (the same webhook-ids
 * again) and removed; core's problems come out as code and detail with a non-zero exit.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from './support/core.ts';
import { createFleet, update, type TestFleet } from './support/fleet.ts';
import { freePort, runFleetwire } from './support/processes.ts';
import { until } from './support/stream.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

let core: TestCore;
let env: Record<string, string>;
const received: Received[] = [];
const receiver = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
  request.on('end', () => {
    received.push({ headers: request.headers, body });
    response.writeHead(204).end();
  });
});
let receiverUrl: string;

beforeAll(async () => {
  core = await startTestCore();
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  env = {
    FLEETWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), 'fleetwire-cli-webhooks-')),
    FLEETWIRE_CORE_URL: core.url,
    FLEETWIRE_ADMIN_TOKEN: core.adminToken,
    FLEETWIRE_LOG_LEVEL: 'warn',
  };
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  await core.close();
});

const webhooks = (args: string[], extra: Record<string, string> = {}) => runFleetwire(['webhooks', ...args], { ...env, ...extra });

/** The observed time of the last SoC reading sent, so that every later one is newer however fast the test runs. */
let lastObservedMs = 0;

/** SoC readings about a minute ago, one batch each and each newer than the last, so each one moves the snapshot (and may cross 20%). */
async function socs(fleet: TestFleet, values: number[]) {
  for (const value of values) {
    lastObservedMs = Math.max(lastObservedMs + 1000, core.clock.now() - 60_000);
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value, observedAt: lastObservedMs }])], { now: core.clock.now() });
  }
  await core.events.flush();
}

const health = async (fleet: TestFleet, id: string) => (await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/webhooks/${id}`)).body;

describe('fleetwire webhooks', () => {
  it('adds, lists, pauses, resumes, replays and removes a subscription', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { name: 'CLI webhooks depot' });
    const ws = fleet.workspaceId;

    const added = await webhooks([
      'add', '--workspace', ws, '--url', receiverUrl,
      '--types', 'fleetwire.vehicle.soc.crossed, fleetwire.vehicle.charging.started', '--description', 'depot planner',
    ]);
    expect(added.code, added.output).toBe(0);
    const id = /webhook (\S+) added in workspace/.exec(added.output)![1]!;
    const secret = /secret:\s+(whsec_\S+)/.exec(added.output)![1]!;
    expect(added.output).toMatch(/types:\s+fleetwire\.vehicle\.soc\.crossed, fleetwire\.vehicle\.charging\.started/);
    expect(added.output).toMatch(/shown this once/);
    // Never again: neither the list nor the API answers it.
    expect(JSON.stringify(await health(fleet, id))).not.toContain(secret);

    // 25 → 18 crosses 20% down: one event, signed with the secret the command printed.
    await socs(fleet, [25, 18]);
    await until('the first delivery', () => received.length >= 1 || undefined);
    const first = new Webhook(secret).verify(received[0]!.body, received[0]!.headers as Record<string, string>) as { type: string; data: { direction: string } };
    expect(first).toMatchObject({ type: 'fleetwire.vehicle.soc.crossed', data: { direction: 'down' } });
    await until('the delivery recorded', async () => (await health(fleet, id)).health.lastSuccessAt !== null || undefined);

    const listed = await webhooks(['list', '--workspace', ws]);
    expect(listed.code, listed.output).toBe(0);
    const [header, row] = listed.output.trim().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['ID', 'STATE', 'BACKLOG', 'LAST SUCCESS', 'LAST ERROR', 'URL', 'TYPES']);
    expect(row!.split(/\s{2,}/)).toEqual([id, 'active', '0', expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), '-', receiverUrl, 'vehicle.soc.crossed,vehicle.charging.started']);

    const paused = await webhooks(['pause', '--workspace', ws, id]);
    expect(paused.code, paused.output).toBe(0);
    expect(paused.output).toMatch(new RegExp(`webhook ${id} paused with 0 events waiting`));
    // 18 → 25 crosses 20% up while it is paused: the event waits in its backlog.
    await socs(fleet, [25]);
    await until('the event in its backlog', async () => (await health(fleet, id)).health.backlog === 1 || undefined);
    const whilePaused = await webhooks(['list', '--workspace', ws]);
    expect(whilePaused.output.trim().split('\n')[1]!.split(/\s{2,}/).slice(0, 3)).toEqual([id, 'paused', '1']);
    expect(whilePaused.output).toMatch(new RegExp(`${id}: paused by an operator`));
    expect(received).toHaveLength(1);

    const resumed = await webhooks(['resume', '--workspace', ws, id]);
    expect(resumed.output).toMatch(new RegExp(`webhook ${id} resumed: 1 event to deliver`));
    await until('the waiting event delivered', () => received.length >= 2 || undefined);
    expect(JSON.parse(received[1]!.body)).toMatchObject({ type: 'fleetwire.vehicle.soc.crossed', data: { direction: 'up' } });
    await until('the cursor past it', async () => (await health(fleet, id)).health.backlog === 0 || undefined);

    const replayed = await webhooks(['replay', '--workspace', ws, id, '--from', 'start']);
    expect(replayed.code, replayed.output).toBe(0);
    expect(replayed.output).toMatch(new RegExp(`webhook ${id} replays from the oldest kept event: 2 events to deliver again`));
    await until('both events again', () => received.length >= 4 || undefined);
    expect(received.slice(2).map((r) => r.headers['webhook-id'])).toEqual(received.slice(0, 2).map((r) => r.headers['webhook-id']));

    const asJson = await webhooks(['list', '--workspace', ws, '--json']);
    expect(JSON.parse(asJson.output)).toMatchObject({ items: [{ id, status: 'active', types: ['fleetwire.vehicle.soc.crossed', 'fleetwire.vehicle.charging.started'] }] });

    const removed = await webhooks(['remove', '--workspace', ws, id]);
    expect(removed.output).toMatch(new RegExp(`webhook ${id} removed`));
    expect((await webhooks(['list', '--workspace', ws])).output).toMatch(/no webhook subscriptions in workspace/);
    const again = await webhooks(['resume', '--workspace', ws, id]);
    expect([again.code, again.output.trim()]).toEqual([1, `fleetwire: 404 webhook_not_found: webhook ${id} does not exist`]);
  }, 60_000);

  it("answers core's problems with their code and detail, and usage mistakes with the usage", async () => {
    const fleet = await createFleet(core.db, core.secretKey, { name: 'CLI webhook problems' });
    const ws = fleet.workspaceId;

    const unknownType = await webhooks(['add', '--workspace', ws, '--url', receiverUrl, '--types', 'fleetwire.vehicle.soc.crossed,fleetwire.vehicle.exploded']);
    expect(unknownType.code).toBe(1);
    expect(unknownType.output).toMatch(/^fleetwire: 400 unknown_event_type: not event types: "fleetwire\.vehicle\.exploded" \(event types: fleetwire\.vehicle\.state\.changed, /);
    const badUrl = await webhooks(['add', '--workspace', ws, '--url', 'ftp://example.invalid/', '--types', 'fleetwire.vehicle.soc.crossed']);
    expect([badUrl.code, badUrl.output]).toEqual([1, expect.stringMatching(/^fleetwire: 400 invalid_webhook_url: the webhook URL must be http or https/)]);
    const noWorkspace = await webhooks(['list', '--workspace', '00000000-0000-4000-8000-000000000000']);
    expect([noWorkspace.code, noWorkspace.output]).toEqual([1, expect.stringMatching(/^fleetwire: 404 workspace_not_found/)]);
    expect((await core.http.admin('GET', `/v1/workspaces/${ws}/webhooks`)).body.items).toEqual([]);

    const added = await webhooks(['add', '--workspace', ws, '--url', receiverUrl, '--types', 'fleetwire.vehicle.freshness.changed']);
    const id = /webhook (\S+) added/.exec(added.output)![1]!;
    const badFrom = await webhooks(['replay', '--workspace', ws, id, '--from', 'yesterday']);
    expect([badFrom.code, badFrom.output]).toEqual([1, expect.stringMatching(/^fleetwire: 400 validation_failed: body\.from: .*\(--from takes an RFC 3339 time with its offset/)]);

    const wrongToken = await webhooks(['list', '--workspace', ws], { FLEETWIRE_ADMIN_TOKEN: `fwa_wrong_${'x'.repeat(30)}` });
    expect([wrongToken.code, wrongToken.output]).toEqual([1, expect.stringMatching(/^fleetwire: 401 /)]);
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await webhooks(['list', '--workspace', ws], { FLEETWIRE_CORE_URL: nobody });
    expect([unreachable.code, unreachable.output]).toEqual([1, expect.stringMatching(new RegExp(`^fleetwire: core is not reachable at ${nobody}`))]);

    for (const [args, message] of [
      [['list'], /missing --workspace <ws>/],
      [['add', '--workspace', ws, '--url', receiverUrl], /missing --types/],
      [['add', '--workspace', ws, '--url', receiverUrl, '--types', ' , '], /--types takes event types/],
      [['pause', '--workspace', ws], /missing the webhook id/],
      [['replay', '--workspace', ws, id], /missing --from/],
      [['remove', '--workspace', ws, id, 'another'], /unexpected arguments: another/],
      [['list', '--workspace', ws, '--colour'], /Unknown option '--colour'/],
      [['frob', '--workspace', ws], /unknown command: webhooks frob/],
    ] as const) {
      const answer = await webhooks([...args]);
      expect([answer.code, answer.output], args.join(' ')).toEqual([2, expect.stringMatching(message)]);
      expect(answer.output).toMatch(/usage: fleetwire/);
    }
  }, 60_000);
});
