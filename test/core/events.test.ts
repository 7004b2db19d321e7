/**
 * Events out, the store side (DESIGN §10): what a unit of work tells (state changed, charging started and stopped,
 * SoC thresholds crossed), written in its transaction or not at all, numbered per vehicle, given log positions in
 * commit order and in each vehicle's order even under concurrent batches, served as server-sent events that resume by
 * Last-Event-ID, and kept for the workspace's event retention.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vehicleEvents, type AcceptedReading } from '../../src/core/events/derive.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { runRetention } from '../../src/core/maintenance/retention.ts';
import { sweepTransitions } from '../../src/core/events/transition-sweeper.ts';
import { defaultPolicy, putCutover } from '../../src/core/registry/workspaces.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, iso, update, type TestFleet } from '../support/fleet.ts';
import { until } from '../support/stream.ts';

let core: TestCore;
beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

const t0 = Date.parse('2026-11-30T17:00:00.000Z');
const minute = 60_000;
const reading = (signal: string, value: unknown, minutes: number): AcceptedReading => ({ signal, value, observedMs: t0 + minutes * minute, source: 'poll', provider: 'samsara' });

describe('what a unit of work tells', () => {
  const ids = () => {
    let n = 0;
    return () => `e${(n += 1)}`;
  };

  it('tells each turn of charging and each threshold crossed, in observed order, then one state change with the newest values', () => {
    const events = vehicleEvents(
      {
        workspaceId: 'ws',
        vehicleId: 'v1',
        before: { socPct: 25, chargingState: 'not_charging' },
        socThresholdsPct: [80, 20, 50],
        // Out of order on purpose: a batch is walked by observed time.
        accepted: [reading('soc_pct', 85, 40), reading('charging_state', 'charging', 5), reading('soc_pct', 18, 2), reading('charging_state', 'complete', 41), reading('speed_kph', 0, 1)],
      },
      ids(),
    );
    expect(events.map((e) => [e.type, e.time])).toEqual([
      ['fleetwire.vehicle.soc.crossed', iso(t0 + 2 * minute)],
      ['fleetwire.vehicle.charging.started', iso(t0 + 5 * minute)],
      ['fleetwire.vehicle.soc.crossed', iso(t0 + 40 * minute)],
      ['fleetwire.vehicle.soc.crossed', iso(t0 + 40 * minute)],
      ['fleetwire.vehicle.soc.crossed', iso(t0 + 40 * minute)],
      ['fleetwire.vehicle.charging.stopped', iso(t0 + 41 * minute)],
      ['fleetwire.vehicle.state.changed', iso(t0 + 41 * minute)],
    ]);
    expect(events[0]!.data).toEqual({ vehicleId: 'v1', thresholdPct: 20, direction: 'down', socPct: 18, previousSocPct: 25, observedAt: iso(t0 + 2 * minute) });
    expect(events[1]!.data).toEqual({ vehicleId: 'v1', chargingState: 'charging', previousChargingState: 'not_charging', socPct: 18, observedAt: iso(t0 + 5 * minute) });
    expect(events.slice(2, 5).map((e) => [e.data.thresholdPct, e.data.direction])).toEqual([
      [20, 'up'],
      [50, 'up'],
      [80, 'up'],
    ]);
    expect(events[5]!.data).toMatchObject({ chargingState: 'complete', previousChargingState: 'charging', socPct: 85 });
    expect(events[6]!.data).toEqual({
      vehicleId: 'v1',
      signals: {
        speed_kph: { value: 0, observedAt: iso(t0 + minute), source: 'poll', provider: 'samsara' },
        soc_pct: { value: 85, observedAt: iso(t0 + 40 * minute), source: 'poll', provider: 'samsara' },
        charging_state: { value: 'complete', observedAt: iso(t0 + 41 * minute), source: 'poll', provider: 'samsara' },
      },
    });
    expect(events.every((e) => e.subject === 'vehicles/v1' && e.workspaceId === 'ws')).toBe(true);
  });

  it('crosses nothing without a previous SoC or when it only touches a level from above, and starts charging from nothing known', () => {
    const first = vehicleEvents({ workspaceId: 'ws', vehicleId: 'v', before: {}, socThresholdsPct: [20], accepted: [reading('soc_pct', 10, 0), reading('charging_state', 'charging', 0)] }, ids());
    expect(first.map((e) => e.type)).toEqual(['fleetwire.vehicle.charging.started', 'fleetwire.vehicle.state.changed']);
    // 20 is reached from above (still at the level: not below it) and left upwards from it: no crossing either way.
    const touching = vehicleEvents({ workspaceId: 'ws', vehicleId: 'v', before: { socPct: 30 }, socThresholdsPct: [20], accepted: [reading('soc_pct', 20, 1), reading('soc_pct', 25, 2)] }, ids());
    expect(touching.map((e) => e.type)).toEqual(['fleetwire.vehicle.state.changed']);
    // Charging going on is not a new start; an empty unit of work tells nothing.
    expect(vehicleEvents({ workspaceId: 'ws', vehicleId: 'v', before: { chargingState: 'charging' }, socThresholdsPct: [], accepted: [reading('charging_state', 'charging', 3)] }, ids()).map((e) => e.type)).toEqual([
      'fleetwire.vehicle.state.changed',
    ]);
    expect(vehicleEvents({ workspaceId: 'ws', vehicleId: 'v', before: {}, socThresholdsPct: [20], accepted: [] }, ids())).toEqual([]);
  });
});

interface EventRow {
  subject: string;
  type: string;
  sequence: string;
  position: string | null;
  data: Record<string, unknown>;
}

async function eventsOf(fleet: TestFleet): Promise<EventRow[]> {
  const { rows } = await core.db.query<EventRow>(
    'SELECT subject, type, sequence::text, position::text, data::json AS data FROM events WHERE workspace_id = $1 ORDER BY events.position',
    [fleet.workspaceId],
  );
  return rows;
}

describe('the outbox', () => {
  it('writes the events of a unit of work with it, numbered per vehicle, and none for late, duplicate or rejected readings', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, policy: { ...defaultPolicy, socThresholdsPct: [50] } });
    const now = t0 + 2 * 3600_000;
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 60, observedAt: t0 + 10 * minute }])], { now });
    await ingestBatch(
      core.db,
      [
        update(fleet, [
          { signal: 'soc_pct', value: 40, observedAt: t0 + 20 * minute },
          // Late (older than the snapshot), then a duplicate of the first reading, then a value out of range.
          { signal: 'soc_pct', value: 70, observedAt: t0 + 5 * minute },
          { signal: 'soc_pct', value: 60, observedAt: t0 + 10 * minute },
          { signal: 'soc_pct', value: 140, observedAt: t0 + 30 * minute },
        ]),
        update(fleet, [{ signal: 'charging_state', value: 'charging', observedAt: t0 + 20 * minute }], { vehicle: 1 }),
      ],
      { now },
    );
    const rows = await eventsOf(fleet);
    const [v0, v1] = fleet.vehicles.map((v) => `vehicles/${v.id}`);
    expect(rows.map((r) => [r.subject, r.type, r.sequence])).toEqual([
      [v0, 'fleetwire.vehicle.state.changed', '1'],
      [v0, 'fleetwire.vehicle.soc.crossed', '2'],
      [v0, 'fleetwire.vehicle.state.changed', '3'],
      [v1, 'fleetwire.vehicle.charging.started', '1'],
      [v1, 'fleetwire.vehicle.state.changed', '2'],
    ]);
    expect(rows[2]!.data).toEqual({ vehicleId: fleet.vehicles[0]!.id, signals: { soc_pct: { value: 40, observedAt: iso(t0 + 20 * minute), source: 'poll', provider: 'samsara' } } });
  });

  it('writes no event for a unit of work that does not commit', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    await expect(
      ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 33, observedAt: t0 }])], {
        now: t0 + minute,
        withinTransaction: async () => {
          throw new Error('the feed cursor could not be written');
        },
      }),
    ).rejects.toThrow('feed cursor');
    expect(await eventsOf(fleet)).toEqual([]);
  });

  it("gives committed events positions in each vehicle's order, however concurrent batches commit", async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 3 });
    const batches = Array.from({ length: 24 }, (_, i) =>
      fleet.vehicles.map((_, vehicle) => update(fleet, [{ signal: 'soc_pct', value: (i * 7 + vehicle * 13) % 100, observedAt: t0 + i * minute }], { vehicle })),
    );
    // Batches for the same vehicles at once: they wait for each other's vehicle locks, and commit in any order.
    await Promise.all(batches.map((batch) => ingestBatch(core.db, batch, { now: t0 + 3600_000 })));
    await core.events.flush();
    const rows = await eventsOf(fleet);
    expect(rows.every((r) => r.position !== null)).toBe(true);
    for (const vehicle of fleet.vehicles) {
      const own = rows.filter((r) => r.subject === `vehicles/${vehicle.id}`).sort((a, b) => Number(a.position) - Number(b.position));
      expect(own.map((r) => Number(r.sequence))).toEqual(own.map((_, i) => i + 1));
    }
    // Positions are dense over the whole log: no gap for a reader to wait on.
    const { rows: all } = await core.db.query<{ n: string; lo: string; hi: string }>('SELECT count(*)::text AS n, min(position)::text AS lo, max(position)::text AS hi FROM events');
    expect(Number(all[0]!.hi) - Number(all[0]!.lo) + 1).toBe(Number(all[0]!.n));
  });

  it('keeps events for the workspace’s event retention, not its history retention', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { policy: { ...defaultPolicy, eventRetentionDays: 2 } });
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 50, observedAt: t0 }])], { now: t0 + minute });
    await core.events.flush();
    await core.db.query("UPDATE events SET created_at = now() - interval '3 days' WHERE workspace_id = $1", [fleet.workspaceId]);
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 51, observedAt: t0 + minute }])], { now: t0 + 2 * minute });
    await core.events.flush();
    const report = await runRetention(core.db);
    expect(report.deletedEvents).toBeGreaterThanOrEqual(1);
    expect((await eventsOf(fleet)).map((r) => r.data.signals)).toEqual([{ soc_pct: expect.objectContaining({ value: 51 }) }]);
  });
});

/** Reads a text/event-stream until `count` events arrived (or the stream ended), with their ids. */
async function readStream(url: string, token: string, count: number, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers }, signal: controller.signal });
  const events: { id: string | undefined; event: string | undefined; data: any }[] = [];
  const answer = { status: response.status, contentType: response.headers.get('content-type'), events, comments: [] as string[], body: '', startId: undefined as string | undefined };
  if (response.status !== 200) {
    answer.body = await response.text();
    return Object.assign(answer, { done: Promise.resolve(), close: () => controller.abort() });
  }
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const done = (async () => {
    try {
      while (events.length < count) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) answer.comments.push(line);
            const at = line.indexOf(': ');
            if (at > 0) fields.set(line.slice(0, at), line.slice(at + 2));
          }
          if (fields.has('data')) events.push({ id: fields.get('id'), event: fields.get('event'), data: JSON.parse(fields.get('data')!) });
          else if (fields.has('id')) answer.startId ??= fields.get('id');
        }
      }
    } catch {
      // Aborted.
    }
  })();
  return Object.assign(answer, { done, close: () => controller.abort() });
}

describe('server-sent events', () => {
  it('streams CloudEvents as they commit, filtered by type, and resumes after Last-Event-ID', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2 });
    const key = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, { name: 'events' })).body.key as string;
    const url = `${core.url}/v1/workspaces/${fleet.workspaceId}/events`;
    const live = await readStream(url, key, 4);
    expect(live.status).toBe(200);
    expect(live.contentType).toMatch(/^text\/event-stream/);
    const charging = await readStream(`${url}?types=fleetwire.vehicle.charging.started`, key, 1);

    const now = core.clock.now();
    await ingestBatch(
      core.db,
      [
        update(fleet, [{ signal: 'soc_pct', value: 55, observedAt: now - 5 * minute }]),
        update(fleet, [{ signal: 'charging_state', value: 'charging', observedAt: now - 4 * minute }], { vehicle: 1 }),
      ],
      { now },
    );
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 56, observedAt: now - 3 * minute }])], { now });
    await live.done;
    await charging.done;
    live.close();
    charging.close();

    expect(live.events.map((e) => e.event)).toEqual([
      'fleetwire.vehicle.state.changed',
      'fleetwire.vehicle.charging.started',
      'fleetwire.vehicle.state.changed',
      'fleetwire.vehicle.state.changed',
    ]);
    const first = live.events[0]!;
    expect(first.data).toMatchObject({
      specversion: '1.0',
      type: 'fleetwire.vehicle.state.changed',
      source: `/workspaces/${fleet.workspaceId}`,
      subject: `vehicles/${fleet.vehicles[0]!.id}`,
      sequence: '0000000000000000001',
      datacontenttype: 'application/json',
      time: iso(now - 5 * minute),
      data: { vehicleId: fleet.vehicles[0]!.id, signals: { soc_pct: { value: 55, observedAt: iso(now - 5 * minute), source: 'poll', provider: 'samsara' } } },
    });
    expect(first.data.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(live.events[3]!.id)).toBeGreaterThan(Number(live.events[0]!.id));
    expect(charging.events.map((e) => e.event)).toEqual(['fleetwire.vehicle.charging.started']);

    // Resuming after the second event gives the third and fourth, the same events with the same ids.
    const resumed = await readStream(url, key, 2, { 'last-event-id': live.events[1]!.id! });
    await resumed.done;
    resumed.close();
    expect(resumed.events.map((e) => [e.id, e.data.id])).toEqual(live.events.slice(2).map((e) => [e.id, e.data.id]));
  });

  it('names its start as the last event id, so a client that drops before any event resumes from there', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const url = `${core.url}/v1/workspaces/${fleet.workspaceId}/events`;
    const first = await readStream(url, core.adminToken, 1);
    await until('the opening block', () => first.startId);
    first.close();
    expect(first.startId).toBe(String(core.events.head()));
    const now = core.clock.now();
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 44, observedAt: now - minute }])], { now });
    await core.events.flush();
    const resumed = await readStream(url, core.adminToken, 1, { 'last-event-id': first.startId! });
    await resumed.done;
    resumed.close();
    expect(resumed.events.map((e) => e.data.data.signals.soc_pct.value)).toEqual([44]);
  });

  it('refuses unknown types and a Last-Event-ID it did not send, and shows one workspace nothing of another', async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const other = await createFleet(core.db, core.secretKey, { name: 'Other depot' });
    const key = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, {})).body.key as string;
    const url = `${core.url}/v1/workspaces/${fleet.workspaceId}/events`;

    const unknown = await readStream(`${url}?types=fleetwire.vehicle.state.changed,fleetwire.vehicle.exploded`, key, 0);
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.body)).toMatchObject({ code: 'unknown_event_type' });
    expect(unknown.body).toContain('fleetwire.vehicle.exploded');
    const badId = await readStream(url, key, 0, { 'last-event-id': 'yesterday' });
    expect(badId.status).toBe(400);
    expect(JSON.parse(badId.body)).toMatchObject({ code: 'invalid_last_event_id' });
    const elsewhere = await readStream(`${core.url}/v1/workspaces/${other.workspaceId}/events`, key, 0);
    expect(elsewhere.status).toBe(404);
  });

  it('sends heartbeats on an idle stream', async () => {
    const quiet = await startTestCore({ eventStream: { heartbeatMs: 100 } });
    try {
      const fleet = await createFleet(quiet.db, quiet.secretKey);
      const stream = await readStream(`${quiet.url}/v1/workspaces/${fleet.workspaceId}/events`, quiet.adminToken, 1);
      await new Promise((resolve) => setTimeout(resolve, 450));
      stream.close();
      expect(stream.comments.filter((c) => c.startsWith(': heartbeat')).length).toBeGreaterThanOrEqual(2);
    } finally {
      await quiet.close();
    }
  });
});

describe('transitions over time', () => {
  it('tells freshness turns once each, with the reason, and records a vehicle first seen without an event', async () => {
    const policy = { ...defaultPolicy, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600 };
    const fleet = await createFleet(core.db, core.secretKey, { policy });
    const vehicleId = fleet.vehicles[0]!.id;
    const now = core.clock.now();
    const freshness = async () =>
      (await eventsOf(fleet)).filter((e) => e.type === 'fleetwire.vehicle.freshness.changed').map((e) => [e.data.previousStatus, e.data.status, (e.data.reason as { code: string } | null)?.code ?? null]);

    await sweepTransitions(core.db, now);
    expect(await freshness()).toEqual([]);
    await ingestBatch(core.db, [update(fleet, [{ signal: 'soc_pct', value: 64, observedAt: now - 1000 }])], { now });
    await sweepTransitions(core.db, now + 1000);
    await sweepTransitions(core.db, now + 2000);
    expect(await freshness()).toEqual([['never', 'fresh', null]]);
    // Nothing confirms it for more than the threshold: stale, because nothing polls it (no scheduled event has come
    // for two poll intervals either).
    await sweepTransitions(core.db, now + 302_000);
    expect(await freshness()).toEqual([
      ['never', 'fresh', null],
      ['fresh', 'stale', 'connection_scheduler_silent'],
    ]);
    const rows = await eventsOf(fleet);
    expect(rows.filter((r) => r.subject === `vehicles/${vehicleId}`).map((r) => Number(r.sequence))).toEqual(rows.filter((r) => r.subject === `vehicles/${vehicleId}`).map((_, i) => i + 1));
  });

  it("tells a connection's health turning, and a cutover change, each once", async () => {
    const fleet = await createFleet(core.db, core.secretKey);
    const now = core.clock.now();
    const told = async (type: string) => (await eventsOf(fleet)).filter((e) => e.type === type).map((e) => e.data);
    await sweepTransitions(core.db, now);
    await core.db.query(
      `INSERT INTO connection_poll_states (workspace_id, connection_id, last_attempt_at, last_error_at, last_error_class, last_error_message, consecutive_failures)
       VALUES ($1, $2, $3, $3, 'transient', 'HTTP 502 from the provider', 3)
       ON CONFLICT (workspace_id, connection_id) DO UPDATE
          SET last_attempt_at = $3, last_error_at = $3, last_error_class = 'transient', last_error_message = 'HTTP 502 from the provider', consecutive_failures = 3`,
      [fleet.workspaceId, fleet.connectionId, iso(now)],
    );
    await sweepTransitions(core.db, now + 1000);
    await sweepTransitions(core.db, now + 2000);
    expect(await told('fleetwire.connection.health.changed')).toEqual([
      expect.objectContaining({ connectionId: fleet.connectionId, provider: 'samsara', previousStatus: 'ok', status: 'failing' }),
    ]);

    await putCutover(core.db, fleet.workspaceId, 'legacy');
    await putCutover(core.db, fleet.workspaceId, 'legacy');
    await putCutover(core.db, fleet.workspaceId, 'core');
    const cutovers = (await eventsOf(fleet)).filter((e) => e.type === 'fleetwire.workspace.cutover.changed');
    expect(cutovers.map((e) => [e.subject, e.sequence, e.data.previousMode, e.data.mode])).toEqual([
      ['workspace', '1', 'core', 'legacy'],
      ['workspace', '2', 'legacy', 'core'],
    ]);
  });
});
