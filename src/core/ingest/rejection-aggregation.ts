/**
 * What a batch adds to the tables that count rather than list: rejections folded by cause, the devices nobody bound,
 * and the readings taken per connection. Each is aggregated here, within the batch, so the unit of work writes one
 * row per cause (never one per reading) and the same cause met many times in a batch is one row with its count:
 * the upsert of a row it would meet twice in one statement is refused by PostgreSQL, and rows are given in key order
 * so that two batches that share causes lock them in one order.
 */
import { randomInt } from 'node:crypto';
import type { AggregatedRejection, DiscoveredRow, ReadingCountRow, RejectionRow } from './store.ts';

/**
 * Rejections of one cause (reason, connection, device, signal) within one bucket of this width are one row. An
 * hour keeps a day of a shared account's foreign devices to a few dozen rows per connection while still saying
 * when a cause started and stopped.
 */
export const rejectionBucketMs = 3_600_000;

/** Readings and rejected readings are counted per connection in buckets of this width (health's last hour). */
export const readingCountBucketMs = 300_000;

const bucketStart = (nowMs: number, widthMs: number) => new Date(Math.floor(nowMs / widthMs) * widthMs).toISOString();

// Parts are joined by a character no id, reason or signal can hold (all are refused with control characters).
const keyOf = (...parts: (string | null)[]) => parts.map((p) => (p === null ? '\u0001' : p)).join('\u0000');

function sortedValues<T>(byKey: Map<string, T>): T[] {
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);
}

/** The batch's rejections folded by cause: counts summed, the last one of each cause in batch order as its example. */
export function aggregateRejections(rejections: readonly RejectionRow[], nowMs: number): AggregatedRejection[] {
  const bucket = bucketStart(nowMs, rejectionBucketMs);
  const rejectedAt = new Date(nowMs).toISOString();
  const byCause = new Map<string, AggregatedRejection>();
  for (const row of rejections) {
    const key = keyOf(row.workspaceId, row.reason, row.connectionId, row.causeDeviceId, row.signal);
    const seen = byCause.get(key);
    byCause.set(key, {
      ...row,
      bucketStart: bucket,
      rejectedAt,
      count: (seen?.count ?? 0) + 1,
      readingCount: (seen?.readingCount ?? 0) + row.readings,
    });
  }
  return sortedValues(byCause);
}

/** A batch's sightings of one unbound device, before they are folded. */
export interface Sighting {
  workspaceId: string;
  connectionId: string;
  externalId: string;
  provider: string;
  readings: number;
  ignored: boolean;
  /** The update's catalogue-valid readings, newest per signal: what the device sends. */
  sample: Record<string, { value: unknown; observedAt: string }>;
}

/** Sightings folded per device: counts summed, the sample merged with the newest reading of each signal winning. */
export function aggregateSightings(sightings: readonly Sighting[], nowMs: number): DiscoveredRow[] {
  const seenAt = new Date(nowMs).toISOString();
  const byDevice = new Map<string, DiscoveredRow>();
  for (const s of sightings) {
    const key = keyOf(s.workspaceId, s.connectionId, s.externalId);
    const row = byDevice.get(key) ?? { workspaceId: s.workspaceId, connectionId: s.connectionId, externalId: s.externalId, provider: s.provider, seenAt, readings: 0, ignored: 0, sample: {} };
    row.readings += s.readings;
    if (s.ignored) row.ignored += s.readings;
    for (const [signal, point] of Object.entries(s.sample)) {
      const kept = row.sample[signal];
      if (!kept || Date.parse(point.observedAt) >= Date.parse(kept.observedAt)) row.sample[signal] = point;
    }
    byDevice.set(key, row);
  }
  return sortedValues(byDevice);
}

/**
 * Every batch adds to its connections' reading counts, and a counter row stays locked by the unit of work that
 * updated it until that commits: one row per connection and bucket would make concurrent batches of a connection
 * (a busy stream) wait for each other's commits. Each connection and bucket has up to this many rows instead
 * (`slot`), summed when read; a process hands the slots out in turn, from a random start, so its concurrent batches
 * never share one and two processes rarely do.
 */
export const readingCountSlots = 16;
let nextSlot = randomInt(readingCountSlots);

/** Readings taken and rejected, per workspace and connection, in the current count bucket, on this batch's slot. */
export function aggregateReadingCounts(
  counts: readonly { workspaceId: string; connectionId: string; readings: number; rejected: number }[],
  nowMs: number,
): ReadingCountRow[] {
  const bucket = bucketStart(nowMs, readingCountBucketMs);
  const slot = nextSlot;
  nextSlot = (nextSlot + 1) % readingCountSlots;
  const byConnection = new Map<string, ReadingCountRow>();
  for (const c of counts) {
    if (c.readings === 0 && c.rejected === 0) continue;
    const key = keyOf(c.workspaceId, c.connectionId);
    const row = byConnection.get(key) ?? { workspaceId: c.workspaceId, connectionId: c.connectionId, bucketStart: bucket, slot, readings: 0, rejected: 0 };
    row.readings += c.readings;
    row.rejected += c.rejected;
    byConnection.set(key, row);
  }
  return sortedValues(byConnection);
}
