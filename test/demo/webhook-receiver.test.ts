/**
 * The demo's console receiver (src/demo/webhook-receiver.ts), subscribed the way the demo does it: core's dispatcher
 * delivers to it, it verifies each signature with its own code and prints one line per event, once (a replay sends
 * the same webhook-ids, printed nothing new); a delivery it cannot verify is answered 401 and not printed. A delivery
 * signed by the `standardwebhooks` library as it is gets through, so the two agree on the scheme.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listWebhooks } from '../../src/core/events/webhooks.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { getVehicle } from '../../src/core/read/vehicles.ts';
import { demoWebhookTypes, seedDemoWebhook } from '../../src/demo/seed.ts';
import { describeEvent, startDemoWebhookReceiver, type DemoWebhookReceiver } from '../../src/demo/webhook-receiver.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { until } from '../support/stream.ts';

let core: TestCore;
let fleet: TestFleet;
let receiver: DemoWebhookReceiver;
let secret: string;
const lines: string[] = [];

beforeAll(async () => {
  core = await startTestCore();
  fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, name: 'Receiver depot' });
  receiver = await startDemoWebhookReceiver({
    print: (line) => lines.push(line),
    vehicleName: async (id) => (await getVehicle(core.db, fleet.workspaceId, id)).name,
  });
  secret = await seedDemoWebhook(core.db, core.secretKey, fleet.workspaceId, receiver.url, { allowPrivate: true });
  receiver.verifyWith(secret);
});
afterAll(async () => {
  await receiver?.stop();
  await core?.close();
});

const post = (body: string, headers: Record<string, string>) =>
  fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json', ...headers }, body });

/** A CloudEvent signed by the reference library, `at` the given time. */
function signed(key: string, event: object, at = new Date()) {
  const id = randomUUID();
  const body = JSON.stringify({ specversion: '1.0', id, ...event });
  return { id, body, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(key).sign(id, at, body) } };
}

describe("the demo's webhook receiver", () => {
  it('prints one line per verified delivery, and nothing again when the same events are replayed', async () => {
    const subscriptions = await listWebhooks(core.db, fleet.workspaceId);
    expect(subscriptions).toMatchObject([{ url: receiver.url, types: [...demoWebhookTypes], status: 'active' }]);

    // 25% and not charging, then 18% and charging: charging started at 18%, and 20% crossed on the way down.
    const start = core.clock.now() - 60_000;
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 25, observedAt: start }, { signal: 'charging_state', value: 'not_charging', observedAt: start }])], { now: core.clock.now() });
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 18, observedAt: start + 1000 }, { signal: 'charging_state', value: 'charging', observedAt: start + 1000 }])], { now: core.clock.now() });
    await until('two lines', () => lines.length >= 2 || undefined);
    expect(lines).toEqual([
      expect.stringMatching(/^webhook {2}\d\d:\d\d:\d\d {2}charging\.started +Vehicle 0000 +charging started at 18%$/),
      expect.stringMatching(/^webhook {2}\d\d:\d\d:\d\d {2}soc\.crossed +Vehicle 0000 +soc 18% ↓ crossed 20%$/),
    ]);

    const id = subscriptions[0]!.id;
    const deliveries = async () => (await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/webhooks/${id}/deliveries`)).body.items as { outcome: string }[];
    await until('both recorded', async () => (await deliveries()).length === 2 || undefined);
    const replay = await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/webhooks/${id}/replay`, { from: new Date(start - 60_000).toISOString() });
    expect(replay.status).toBe(202);
    const all = await until('the replayed deliveries answered', async () => {
      const items = await deliveries();
      return items.length === 4 ? items : undefined;
    });
    expect(all.map((d) => d.outcome)).toEqual(Array(4).fill('delivered'));
    expect(lines).toHaveLength(2);
  });

  it('refuses with 401, and prints nothing of, a delivery it cannot verify', async () => {
    const before = lines.length;
    const event = { type: 'fleetwire.vehicle.soc.crossed', subject: `vehicles/${fleet.vehicles[1]!.id}`, time: new Date().toISOString(), data: { vehicleId: fleet.vehicles[1]!.id, thresholdPct: 80, direction: 'up', socPct: 81, previousSocPct: 79 } };

    const otherKey = `whsec_${randomBytes(32).toString('base64')}`;
    const wrongKey = signed(otherKey, event);
    const good = signed(secret, event);
    const stale = signed(secret, event, new Date(Date.now() - 10 * 60_000));
    const refusals: [string, string, Record<string, string>][] = [
      ['signed with another secret', wrongKey.body, wrongKey.headers],
      ['a body changed after signing', good.body.replace('"socPct":81', '"socPct":99'), good.headers],
      ['signed ten minutes ago', stale.body, stale.headers],
      ['a made-up signature', good.body, { ...good.headers, 'webhook-signature': `v1,${randomBytes(32).toString('base64')}` }],
      ['a signature of another version', good.body, { ...good.headers, 'webhook-signature': good.headers['webhook-signature'].replace(/^v1,/, 'v2,') }],
      ['no signature', good.body, { 'webhook-id': good.id, 'webhook-timestamp': good.headers['webhook-timestamp'] }],
    ];
    for (const [what, body, headers] of refusals) {
      expect((await post(body, headers)).status, what).toBe(401);
    }
    expect(lines).toHaveLength(before);

    // The reference library's signature, among others in the header as the scheme allows, gets through, once.
    const listed = { ...good.headers, 'webhook-signature': `v1,${randomBytes(32).toString('base64')} ${good.headers['webhook-signature']}` };
    expect((await post(good.body, listed)).status).toBe(200);
    expect((await post(good.body, listed)).status).toBe(200);
    expect(lines.slice(before)).toEqual([expect.stringMatching(/soc\.crossed +Vehicle 0001 +soc 81% ↑ crossed 80%$/)]);
    expect((await fetch(receiver.url)).status).toBe(405);
  });

  it('answers 503 until it knows the secret, so the dispatcher retries', async () => {
    const early = await startDemoWebhookReceiver({ print: () => expect.unreachable(), vehicleName: async () => undefined });
    try {
      const { body, headers } = signed(secret, { type: 'fleetwire.vehicle.soc.crossed', data: {} });
      const answer = await fetch(early.url, { method: 'POST', headers, body });
      expect(answer.status).toBe(503);
    } finally {
      await early.stop();
    }
  });

  it('replaces the subscription an earlier start made, rather than adding another', async () => {
    const again = await seedDemoWebhook(core.db, core.secretKey, fleet.workspaceId, `${receiver.url}?again`, { allowPrivate: true });
    expect(again).not.toBe(secret);
    expect((await listWebhooks(core.db, fleet.workspaceId)).map((w) => w.url)).toEqual([`${receiver.url}?again`]);
  });

  it('says each event in a few words', () => {
    const said = (type: string, data: Record<string, unknown>) => describeEvent({ type: `fleetwire.${type}`, data });
    expect(said('vehicle.charging.started', { socPct: null })).toBe('charging started');
    expect(said('vehicle.charging.stopped', { socPct: 80, chargingState: 'complete' })).toBe('charging stopped at 80% (complete)');
    expect(said('vehicle.soc.crossed', { socPct: 79.6, thresholdPct: 80, direction: 'down' })).toBe('soc 79.6% ↓ crossed 80%');
    expect(said('vehicle.freshness.changed', { status: 'stale', previousStatus: 'fresh', reason: { code: 'connection_failing' } })).toBe('fresh → stale (connection_failing)');
    expect(said('vehicle.freshness.changed', { status: 'fresh', previousStatus: 'stale', reason: null })).toBe('stale → fresh');
  });
});
