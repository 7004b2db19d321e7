/**
 * A Samsara feed that must start again. Samsara: "Cursors expire after 30 days" (developers.samsara.com/docs/
 * pagination) and an expired or refused cursor is a 400 (the status it documents for a bad request, "Response
 * codes"; the message is not documented, and "do not hard-code against this message"). The adapter must then
 * restart the feed and read `/fleet/vehicles/stats/history` from the last successful poll, so no reading between
 * the last sync and the restart is lost, note it on the poll run, and leave the connection polling normally.
 * Also: vehicles without OBD odometer get the GPS one, and a vehicle's source never flips back to GPS.
 */
import { describe, expect, it } from 'vitest';
import type { PollPage } from '../../../src/providers/poll-adapter.ts';
import { ProviderError } from '../../../src/providers/provider-error.ts';
import { createSamsaraPollAdapter, defaultTypeGroups, groupKey, type SamsaraCursor } from '../../../src/providers/samsara/adapter.ts';
import type { FleetModel } from '../../../src/sim/fleet-model.ts';
import { hasObdOdometer } from '../../../src/sim/samsara/simulator-stats.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { drain, pollContext, readingsByKey, scriptedServer, startMs, useClockedSimulator } from './support.ts';

const start = useClockedSimulator();
const minute = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The model signals the default groups read, each as the canonical signal it becomes. */
const readSignals = new Set(['location', 'soc_pct', 'charging_state', 'odometer_km', 'ignition', 'battery_temp_c']);

/** Keys (vehicle|signal|ms) of every sample the fleet model observed in (fromMs, toMs]: what must not be lost. */
function modelKeys(fleet: FleetModel, fromMs: number, toMs: number): string[] {
  return fleet
    .samplesFrom(fleet.startSeq)
    .filter((s) => readSignals.has(s.signal) && s.observedAtMs > fromMs && s.observedAtMs <= toMs)
    .map((s) => `${fleet.vehicles[s.vehicle]!.samsaraId}|${s.signal}|${s.observedAtMs}`);
}

const notesOf = (pages: readonly PollPage[]) => pages.flatMap((p) => p.notes ?? []);

describe('Samsara poll adapter: feed restarts', () => {
  it('restarts an expired feed from the last success through history, losing nothing, and then polls normally', async () => {
    const { sim, fleet, clock, advance } = await start({ vehicles: 4, pageSize: 200, cursorLifetimeMs: 20 * minute });
    const adapter = createSamsaraPollAdapter({ now: () => clock.now });
    const first = await drain(adapter, pollContext(sim.url, null));
    expect(notesOf(first)).toEqual([]);
    const lastSuccessAt = iso(clock.now);

    // The connection sits idle past the cursors' lifetime while the fleet drives on.
    advance(30 * minute);
    const restarted = await drain(adapter, pollContext(sim.url, first.at(-1)!.cursor, { lastSuccessAt }));
    const notes = notesOf(restarted);
    for (const key of defaultTypeGroups.map(groupKey)) {
      expect(notes.some((n) => n.includes(`refused the feed cursor of ${key}`))).toBe(true);
      expect(notes.some((n) => n.includes(`history for ${key} from`) && n.includes('read in full'))).toBe(true);
    }
    // The history starts 15 minutes (restartOverlapMinutes) before the last success and ends now: one note when it
    // starts and one when it is read in full, per group.
    expect(notes.filter((n) => n.includes(`from ${iso(startMs - 15 * minute)} to ${iso(clock.now)}`))).toHaveLength(2 * defaultTypeGroups.length);
    // The refused request is counted on the poll run too.
    expect(restarted.reduce((n, p) => n + p.requests, 0)).toBe(sim.served.requests - first.length);
    expectValidReadings(restarted.flatMap((p) => p.devices), { notAfterMs: clock.now });

    const got = readingsByKey([...first, ...restarted]);
    const wanted = modelKeys(fleet, startMs, clock.now);
    expect(wanted.length).toBeGreaterThan(200);
    expect(wanted.filter((key) => !got.has(key))).toEqual([]);
    const cursor = restarted.at(-1)!.cursor as SamsaraCursor;
    expect(cursor.backfills).toBeUndefined();

    // The new cursors work: the next poll reads only what is new, with no note and no history.
    advance(2 * minute);
    const before = sim.served.requests;
    const next = await drain(adapter, pollContext(sim.url, cursor, { lastSuccessAt: iso(clock.now - 2 * minute) }));
    expect(notesOf(next)).toEqual([]);
    const nextKeys = readingsByKey(next);
    expect(modelKeys(fleet, clock.now - 2 * minute, clock.now).filter((key) => !nextKeys.has(key))).toEqual([]);
    expect([...nextKeys.keys()].every((key) => Number(key.split('|')[2]) > clock.now - 2 * minute - 1000)).toBe(true);
    expect(sim.served.requests - before).toBe(next.length);
  });

  it('resumes an interrupted history read from the cursor it committed', async () => {
    const { sim, fleet, clock, advance } = await start({ vehicles: 4, pageSize: 60, cursorLifetimeMs: 20 * minute });
    const adapter = createSamsaraPollAdapter({ now: () => clock.now });
    const first = await drain(adapter, pollContext(sim.url, null));
    const lastSuccessAt = iso(clock.now);
    advance(30 * minute);

    const pages: PollPage[] = [];
    const failure = await (async () => {
      for await (const page of adapter.poll(pollContext(sim.url, first.at(-1)!.cursor, { lastSuccessAt }))) {
        pages.push(page);
        const cursor = page.cursor as SamsaraCursor;
        // A history read under way, part-way through: the server fails the next request.
        if (Object.values(cursor.backfills ?? {}).some((b) => b.after !== undefined)) sim.faults.queue('server_error');
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ProviderError);
    expect((failure as ProviderError).errorClass).toBe('transient');
    const committed = pages.at(-1)!.cursor as SamsaraCursor;
    expect(Object.keys(committed.backfills ?? {}).length).toBeGreaterThan(0);

    // The runner polls again from the committed cursor; the last success has not moved.
    const resumed = await drain(adapter, pollContext(sim.url, committed, { lastSuccessAt }));
    expect(notesOf(resumed).some((n) => n.includes('refused'))).toBe(false);
    expect((resumed.at(-1)!.cursor as SamsaraCursor).backfills).toBeUndefined();
    const got = readingsByKey([...first, ...pages, ...resumed]);
    expect(modelKeys(fleet, startMs, clock.now).filter((key) => !got.has(key))).toEqual([]);
  });

  it('starts afresh when the connection never polled successfully, and says so', async () => {
    const { sim, clock, advance } = await start({ vehicles: 3, cursorLifetimeMs: 20 * minute });
    const adapter = createSamsaraPollAdapter({ now: () => clock.now });
    const first = await drain(adapter, pollContext(sim.url, null));
    advance(30 * minute);
    const pages = await drain(adapter, pollContext(sim.url, first.at(-1)!.cursor, { lastSuccessAt: null }));
    const notes = notesOf(pages);
    expect(notes.filter((n) => n.includes('never polled successfully'))).toHaveLength(defaultTypeGroups.length);
    expect(notes.some((n) => n.includes('history'))).toBe(false);
    // One refused and one fresh call per group: no history read.
    expect(pages).toHaveLength(defaultTypeGroups.length);
    expect(pages.flatMap((p) => p.devices).length).toBeGreaterThan(0);
    expect((pages.at(-1)!.cursor as SamsaraCursor).backfills).toBeUndefined();
  });

  it('backfills a type group that is new since the last success (an upgrade), keeping the other cursors', async () => {
    const { sim, fleet, clock, advance } = await start({ vehicles: 4, pageSize: 500 });
    const adapter = createSamsaraPollAdapter({ now: () => clock.now });
    const first = await drain(adapter, pollContext(sim.url, null));
    const lastSuccessAt = iso(clock.now);
    const [kept] = defaultTypeGroups.map(groupKey);
    const older = { feeds: { [kept!]: (first.at(-1)!.cursor as SamsaraCursor).feeds[kept!]! } };
    advance(10 * minute);
    const pages = await drain(adapter, pollContext(sim.url, older, { lastSuccessAt }));
    const notes = notesOf(pages);
    expect(notes.some((n) => n.includes(kept!))).toBe(false);
    for (const key of defaultTypeGroups.map(groupKey).slice(1)) expect(notes.some((n) => n.includes(`${key} had no cursor`))).toBe(true);
    const got = readingsByKey([...first, ...pages]);
    expect(modelKeys(fleet, startMs, clock.now).filter((key) => !got.has(key))).toEqual([]);
  });

  it('does not loop on a 400 that is not about the cursor: the fresh call fails as permanent', async () => {
    const server = await scriptedServer((_request, response) => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: 'Invalid stat type', requestId: 'r-1' }));
    });
    try {
      const adapter = createSamsaraPollAdapter({ typeGroups: [['gps']] });
      const error = await drain(adapter, pollContext(server.url, { feeds: { gps: 'c1' } }, { lastSuccessAt: iso(startMs) })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ProviderError);
      expect((error as ProviderError).errorClass).toBe('permanent');
      expect(server.requests.map((r) => r.url.searchParams.get('after'))).toEqual(['c1', null]);
    } finally {
      await server.close();
    }
  });
});

describe('Samsara poll adapter: odometer source', () => {
  it('gives every vehicle an odometer: OBD where covered, GPS where not', async () => {
    const { sim, fleet } = await start({ vehicles: 8 });
    const pages = await drain(createSamsaraPollAdapter(), pollContext(sim.url, null));
    const withOdometer = new Set(pages.flatMap((p) => p.devices.filter((d) => d.readings.some((r) => r.signal === 'odometer_km')).map((d) => d.externalDeviceId)));
    expect(withOdometer).toEqual(new Set(fleet.vehicles.map((v) => v.samsaraId)));
    const cursor = pages.at(-1)!.cursor as SamsaraCursor;
    expect(new Set(cursor.obdOdometerVehicles)).toEqual(new Set(fleet.vehicles.filter((v) => hasObdOdometer(v.index)).map((v) => v.samsaraId)));
  });

  it('keeps a vehicle seen with OBD on OBD, also on pages and polls that carry only its GPS odometer', async () => {
    // Page 1: vehicle A with both odometers (GPS 100 km below OBD, as a manual reading can leave it); vehicle B
    // with GPS only. Page 2: A and B with GPS only.
    const bodies = [
      {
        data: [
          { id: 'A', obdOdometerMeters: [{ time: '2026-11-28T11:00:00Z', value: 5_000_000 }], gpsOdometerMeters: [{ time: '2026-11-28T11:00:00Z', value: 4_900_000 }] },
          { id: 'B', gpsOdometerMeters: [{ time: '2026-11-28T11:00:00Z', value: 7_000_000 }] },
        ],
        pagination: { endCursor: 'p1', hasNextPage: true },
      },
      {
        data: [
          { id: 'A', gpsOdometerMeters: [{ time: '2026-11-28T11:05:00Z', value: 4_903_000 }] },
          { id: 'B', gpsOdometerMeters: [{ time: '2026-11-28T11:05:00Z', value: 7_004_000 }] },
        ],
        pagination: { endCursor: 'p2', hasNextPage: false },
      },
    ];
    let served = 0;
    const server = await scriptedServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(bodies[Math.min(served++, 1)]));
    });
    try {
      const adapter = createSamsaraPollAdapter({ typeGroups: [['obdOdometerMeters', 'gpsOdometerMeters']] });
      const pages = await drain(adapter, pollContext(server.url, null));
      const odometers = pages.flatMap((p) => p.devices.flatMap((d) => d.readings.map((r) => `${d.externalDeviceId} ${String(r.value)}`)));
      expect(odometers).toEqual(['A 5000', 'B 7000', 'B 7004']);
      const cursor = pages.at(-1)!.cursor as SamsaraCursor;
      expect(cursor.obdOdometerVehicles).toEqual(['A']);
      // The next poll remembers it from the cursor.
      const again = await drain(adapter, pollContext(server.url, cursor));
      expect(again.flatMap((p) => p.devices.map((d) => d.externalDeviceId))).toEqual(['B']);
    } finally {
      await server.close();
    }
  });
});
