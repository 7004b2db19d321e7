/**
 * Both pollers' readings for parity tests (cutover shadow): updates of a vehicle received some time after they were
 * observed, and two hours of both pollers feeding SoC and odometer every 5 minutes, placed in whole UTC hours before
 * the test's clock, with defects a test injects.
 */
import type { Database } from '../../src/core/db/database.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { iso, update, type TestFleet } from './fleet.ts';

const minute = 60_000;
const hour = 3600_000;
/** Kilometres to miles: a legacy unit error. */
export const miles = 0.621371;

/** The start of the whole hour `n` hours before the one `nowMs` is in. */
export const hoursBefore = (nowMs: number, n: number) => Math.floor(nowMs / hour) * hour - n * hour;

/** One update of a vehicle, received `lagMs` after it was observed. */
export function updateAt(fleet: TestFleet, vehicle: number, source: 'poll' | 'legacy_poll', observedMs: number, readings: Record<string, unknown>, lagMs = 20_000) {
  return {
    ...update(fleet, Object.entries(readings).map(([signal, value]) => ({ signal, value, observedAt: observedMs })), { vehicle, source }),
    receivedAt: iso(observedMs + lagMs),
  };
}

export interface ParityDefects {
  /** The legacy poller's odometer for a vehicle, from the true one. */
  legacyOdometer?: (vehicle: number, km: number) => number;
  /** Whether core's polling misses a vehicle's reading observed at `ms`. */
  coreSkips?: (vehicle: number, ms: number) => boolean;
}

/**
 * Two hours, from three whole hours before `nowMs`, of both pollers every 5 minutes for each vehicle: SoC and
 * odometer, the legacy poller 20 s behind and core 10 s, core's timestamp a second off (rounding, within the match
 * window).
 */
export async function feedTwoHours(db: Database, fleet: TestFleet, nowMs: number, defects: ParityDefects = {}): Promise<void> {
  const from = hoursBefore(nowMs, 3);
  const legacy = [];
  const polled = [];
  for (let ms = from; ms < from + 2 * hour; ms += 5 * minute) {
    for (let v = 0; v < fleet.vehicles.length; v += 1) {
      const km = 1000 + v * 100 + (ms - from) / minute;
      const soc = 80 - (ms - from) / (10 * minute);
      legacy.push(updateAt(fleet, v, 'legacy_poll', ms, { soc_pct: soc, odometer_km: defects.legacyOdometer?.(v, km) ?? km }, 20_000));
      if (!defects.coreSkips?.(v, ms)) polled.push(updateAt(fleet, v, 'poll', ms + 1000, { soc_pct: soc, odometer_km: km }, 10_000));
    }
  }
  await ingestBatch(db, legacy, { now: nowMs });
  await ingestBatch(db, polled, { now: nowMs });
}
