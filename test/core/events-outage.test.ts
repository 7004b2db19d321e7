/**
 * A webhook receiver down for two real minutes while vehicles keep reporting (DESIGN §10): for the first minute it
 * answers 503, for the second its port is closed. The subscription's health shows the backlog and the age of its
 * oldest event growing and the failure it meets; once the receiver is back the backlog drains at once, and the
 * receiver has every committed event, in order per vehicle.
 *
 * The drain is prompt because the test core retries at most 400 ms apart (startTestCore's backoff of 50-400 ms);
 * a core process would wait up to its backoff cap of 5 minutes, which no environment variable sets. Real minutes
 * are the point (the age in the health is the database's), so this runs on PostgreSQL only, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend } from '../support/database.ts';
import { waveReadings } from '../support/charging-wave.ts';
import { eventsWithoutCause } from '../support/event-history.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { until } from '../support/stream.ts';
import { committedEvents, deliveryProblems, redeliveries, startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

const types = ['fleetwire.vehicle.state.changed', 'fleetwire.vehicle.charging.started', 'fleetwire.vehicle.charging.stopped', 'fleetwire.vehicle.soc.crossed'];
const refusingMs = 60_000;
const closedMs = 60_000;
const sampleEveryMs = 10_000;

interface Health {
  backlog: number;
  oldestUndeliveredAgeSeconds: number | null;
  lastSuccessAt: string | null;
  lastError: { message: string; at: string } | null;
  failingSince: string | null;
  nextAttemptAt: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let core: TestCore;
let fleet: TestFleet;
let receiver: WebhookReceiver;

describe.runIf(backend === 'postgres')('a webhook receiver down for two minutes', () => {
  beforeAll(async () => {
    core = await startTestCore();
    fleet = await createFleet(core.db, core.secretKey, { vehicles: 3 });
    receiver = await startWebhookReceiver();
  }, 60_000);

  afterAll(async () => {
    await receiver?.close().catch(() => undefined);
    await core?.close();
  });

  it('shows the backlog growing, then drains it promptly, missing nothing and in order per vehicle', async () => {
    const made = await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/webhooks`, { url: receiver.url, types });
    expect(made.status).toBe(201);
    const { id, secret } = made.body as { id: string; secret: string };
    receiver.trust(secret);
    const health = async () => {
      const answer = await core.http.admin<{ status: string; health: Health }>('GET', `/v1/workspaces/${fleet.workspaceId}/webhooks/${id}`);
      expect(answer.status).toBe(200);
      return answer.body;
    };

    const baseMs = Date.now() - 60 * 60_000;
    const problems: string[] = [];
    let sending = true;
    const senders = fleet.vehicles.map(async (_, v) => {
      for (let n = 1; sending; n += 1) {
        const answer = await core.http.service<{ results: { readings: { status: string }[] }[] }>('POST', '/internal/v1/ingest', {
          updates: [update(fleet, waveReadings(baseMs, v, n), { vehicle: v })],
        });
        const statuses = answer.status === 200 ? answer.body.results[0]!.readings.map((r) => r.status) : [];
        if (!statuses.length || statuses.some((s) => s !== 'accepted')) problems.push(`vehicle ${v} step ${n}: ${answer.status} ${answer.text.slice(0, 300)}`);
        await sleep(400);
      }
    });

    // Delivering first, so the outage interrupts a subscription that works.
    await until('the first deliveries', () => (receiver.received.length >= 10 ? true : undefined), 30_000);

    const outageStarted = Date.now();
    const samples: (Health & { atSeconds: number; phase: 'refusing' | 'closed' })[] = [];
    const sampleUntil = async (endMs: number, phase: 'refusing' | 'closed') => {
      while (Date.now() - outageStarted + sampleEveryMs <= endMs) {
        await sleep(sampleEveryMs);
        samples.push({ ...(await health()).health, atSeconds: (Date.now() - outageStarted) / 1000, phase });
      }
      await sleep(Math.max(0, endMs - (Date.now() - outageStarted)));
    };
    receiver.refuseWith(503);
    const deliveredBeforeOutage = receiver.received.length;
    await sampleUntil(refusingMs, 'refusing');
    await receiver.close();
    await sampleUntil(refusingMs + closedMs, 'closed');
    const during = await health();
    const deliveredDuringOutage = receiver.received.length - deliveredBeforeOutage;

    const pendingAtRecovery = await committedEvents(core.db, fleet.workspaceId, types);
    await receiver.reopen();
    receiver.refuseWith(undefined);
    const recovered = Date.now();
    const got = () => new Set(receiver.received.map((r) => r.id));
    await until('the events committed before the recovery to arrive', () => (pendingAtRecovery.every((e) => got().has(e.id)) ? true : undefined), 60_000);
    const drainSeconds = (Date.now() - recovered) / 1000;

    // Ingest went on meanwhile; stop it and let the rest arrive.
    await sleep(2000);
    sending = false;
    await Promise.all(senders);
    await core.events.flush();
    const drained = await until(
      'the backlog to drain',
      async () => {
        const now = await health();
        const committed = await committedEvents(core.db, fleet.workspaceId, types);
        return now.health.backlog === 0 && committed.every((e) => e.position !== null && got().has(e.id)) ? { now, committed } : undefined;
      },
      60_000,
    );

    console.log(
      `events-outage: ${receiver.refused.length} refused attempts; backlog ${samples.map((s) => `${s.atSeconds.toFixed(0)} s: ${s.backlog} (oldest ${s.oldestUndeliveredAgeSeconds} s)`).join(', ')}; ` +
        `${pendingAtRecovery.length} events waiting at recovery arrived in ${drainSeconds.toFixed(1)} s; ${drained.committed.length} committed, ` +
        `${receiver.received.length} received (${redeliveries(receiver.received)} again)`,
    );

    expect(problems).toEqual([]);
    // Down means down: nothing was answered 2xx after the receiver went down until it came back.
    expect(deliveredDuringOutage).toBe(0);
    expect(samples.length).toBeGreaterThanOrEqual(8);
    for (const s of samples) {
      expect(s.failingSince, `${s.atSeconds} s`).not.toBeNull();
      expect(s.backlog, `${s.atSeconds} s`).toBeGreaterThan(0);
      // The oldest waiting event was committed around the outage's start: its age tracks the outage's length.
      expect(s.oldestUndeliveredAgeSeconds!, `${s.atSeconds} s`).toBeGreaterThanOrEqual(s.atSeconds - 10);
      expect(s.oldestUndeliveredAgeSeconds!, `${s.atSeconds} s`).toBeLessThanOrEqual(s.atSeconds + 10);
    }
    for (let i = 1; i < samples.length; i += 1) {
      expect(samples[i]!.backlog, `backlog at ${samples[i]!.atSeconds} s`).toBeGreaterThanOrEqual(samples[i - 1]!.backlog);
      expect(samples[i]!.oldestUndeliveredAgeSeconds!).toBeGreaterThan(samples[i - 1]!.oldestUndeliveredAgeSeconds!);
    }
    expect(samples.at(-1)!.backlog).toBeGreaterThan(samples[0]!.backlog + 100);
    // The failure it meets, as it meets it: a refusal, then no connection at all.
    const refusing = samples.filter((s) => s.phase === 'refusing');
    const closed = samples.filter((s) => s.phase === 'closed');
    expect(refusing.every((s) => s.lastError?.message === 'HTTP 503')).toBe(true);
    expect(closed.every((s) => /ECONNREFUSED/.test(s.lastError?.message ?? ''))).toBe(true);
    // Still trying at the end of the outage, never given up (that takes 24 h).
    expect(during.status).toBe('active');
    expect(receiver.refused.length).toBeGreaterThan(20);

    expect(drainSeconds).toBeLessThan(30);
    expect(drained.now.health).toMatchObject({ backlog: 0, oldestUndeliveredAgeSeconds: null, failingSince: null, nextAttemptAt: null });
    expect(receiver.unverified).toEqual([]);
    expect(deliveryProblems(receiver.received, drained.committed)).toEqual([]);
    expect(await eventsWithoutCause(core.db, fleet.workspaceId, drained.committed)).toEqual([]);
  }, 240_000);
});
