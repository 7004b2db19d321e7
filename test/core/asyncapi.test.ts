/**
 * The AsyncAPI description at /asyncapi.json: a valid AsyncAPI 3 document (checked by the specification's own
 * parser), one message per event type, and true to what is sent: every kind of event the store writes (from
 * ingest, the transition sweeper and a cutover) is checked, as consumers receive it, against its message's schema.
 */
import { Parser } from '@asyncapi/parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventTypes, toCloudEvent, type EventType } from '../../src/core/events/catalogue.ts';
import { cloudEventSchema } from '../../src/core/events/event-schemas.ts';
import { readEvents } from '../../src/core/events/event-log.ts';
import { sweepTransitions } from '../../src/core/events/transition-sweeper.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { defaultPolicy, putCutover } from '../../src/core/registry/workspaces.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, iso, update } from '../support/fleet.ts';

let core: TestCore;
beforeAll(async () => {
  core = await startTestCore();
});
afterAll(async () => {
  await core.close();
});

describe('the AsyncAPI description', () => {
  it('is served without a token and parses as AsyncAPI 3 with no error or warning, one message per event type', async () => {
    const answer = await core.http.request<Record<string, unknown>>('GET', '/asyncapi.json');
    expect(answer.status).toBe(200);
    expect(answer.body.asyncapi).toMatch(/^3\./);
    const { document, diagnostics } = await new Parser().parse(answer.text);
    // Severity 0 is an error, 1 a warning (2 and 3 are hints).
    expect(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([]);
    expect(document).toBeDefined();
    expect(document!.messages().all().map((m) => m.name()).sort()).toEqual([...eventTypes].sort());
    expect(document!.channels().all().map((c) => c.address())).toEqual([null, '/v1/workspaces/{workspaceId}/events', 'fleetwire.{workspaceId}.{eventType}']);
    expect(document!.operations().all().every((o) => o.action() === 'send' && o.messages().length === eventTypes.length)).toBe(true);
    // The payload of a message is the CloudEvent, its data the type's own.
    const soc = document!.messages().all().find((m) => m.name() === 'fleetwire.vehicle.soc.crossed')!;
    const data = soc.payload()!.properties()!.data!;
    expect(Object.keys(data.properties() ?? {}).sort()).toEqual(['direction', 'observedAt', 'previousSocPct', 'socPct', 'thresholdPct', 'vehicleId']);
    expect(data.properties()!.direction!.enum()).toEqual(['up', 'down']);
  });

  it('describes every event the store writes: each kind, as sent, matches its message schema', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, policy: { ...defaultPolicy, socThresholdsPct: [20, 80], freshnessThresholdSeconds: 300 } });
    const now = core.clock.now();
    await sweepTransitions(core.db, now);
    await ingestBatch(
      core.db,
      [
        update(fleet, [
          { signal: 'soc_pct', value: 25, observedAt: now - 60_000 },
          { signal: 'charging_state', value: 'not_charging', observedAt: now - 60_000 },
          { signal: 'location', value: { lat: 52.52, lon: 13.4 }, observedAt: now - 60_000 },
        ]),
      ],
      { now },
    );
    await ingestBatch(
      core.db,
      [
        update(fleet, [
          { signal: 'soc_pct', value: 18, observedAt: now - 30_000 },
          { signal: 'charging_state', value: 'charging', observedAt: now - 20_000 },
          { signal: 'odometer_km', value: 12_345.6, observedAt: now - 20_000 },
        ]),
        update(fleet, [{ signal: 'soc_pct', value: 85, observedAt: now - 20_000 }], { vehicle: 1 }),
      ],
      { now },
    );
    await ingestBatch(core.db, [update(fleet, [{ signal: 'charging_state', value: 'complete', observedAt: now - 10_000 }])], { now });
    // Freshness turns (never -> fresh, then fresh -> stale with its reason) and a connection failing.
    await sweepTransitions(core.db, now + 1000);
    await core.db.query(
      `INSERT INTO connection_poll_states (workspace_id, connection_id, last_attempt_at, last_error_at, last_error_class, last_error_message, consecutive_failures)
       VALUES ($1, $2, $3, $3, 'auth', 'HTTP 401 from the provider', 3)
       ON CONFLICT (workspace_id, connection_id) DO UPDATE
          SET last_attempt_at = $3, last_error_at = $3, last_error_class = 'auth', last_error_message = 'HTTP 401 from the provider', consecutive_failures = 3`,
      [fleet.workspaceId, fleet.connectionId, iso(now + 2000)],
    );
    await sweepTransitions(core.db, now + 400_000);
    await putCutover(core.db, fleet.workspaceId, 'legacy');
    await core.events.flush();

    const sent = (await readEvents(core.db, { workspaceId: fleet.workspaceId, after: 0, limit: 1000 })).map(toCloudEvent);
    // Every type is among them, so every message schema was exercised.
    expect(new Set(sent.map((e) => e.type))).toEqual(new Set(eventTypes));
    const mismatches = sent.flatMap((event) => {
      const parsed = cloudEventSchema(event.type as EventType).safeParse(JSON.parse(JSON.stringify(event)));
      return parsed.success ? [] : [`${event.type}: ${parsed.error.message}`];
    });
    expect(mismatches).toEqual([]);
  });

  it('refuses an event its schema does not describe, so the check above can fail', () => {
    const good = {
      specversion: '1.0',
      id: '0b6f0d4e-4a0c-4f57-9a44-1f0e2f3c4d5e',
      source: '/workspaces/7c1e9a52-3b7d-4b7e-8f0a-2d3c4b5a6f70',
      type: 'fleetwire.vehicle.soc.crossed',
      subject: 'vehicles/1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
      time: '2026-11-30T17:00:00.000Z',
      datacontenttype: 'application/json',
      sequence: '0000000000000000003',
      data: { vehicleId: '1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f', thresholdPct: 20, direction: 'down', socPct: 18, previousSocPct: 25, observedAt: '2026-11-30T17:00:00.000Z' },
    };
    const schema = cloudEventSchema('fleetwire.vehicle.soc.crossed');
    expect(schema.safeParse(good).success).toBe(true);
    expect(schema.safeParse({ ...good, data: { ...good.data, direction: 'sideways' } }).success).toBe(false);
    expect(schema.safeParse({ ...good, data: { ...good.data, extra: 1 } }).success).toBe(false);
    expect(schema.safeParse({ ...good, sequence: '3' }).success).toBe(false);
  });
});
