/**
 * What each simulated vehicle-stats endpoint serves from a fleet's sample log, and the cursors that page through
 * it. A cursor is a position in the log (base64url JSON, opaque to clients as Samsara's are):
 * - `latest`: paging through the latest values of a first feed call, pinned to the log end `e` at that call;
 * - `feed`: every change from log position `s` on;
 * - `history`: the scan position `s` of a history call;
 * - `vehicles`: the offset `o` into the vehicle list.
 * Every cursor carries the time `t` it was issued; past the cursor lifetime (Samsara: 30 days, "Pagination" guide)
 * it is refused with a 400, as Samsara refuses an expired cursor. A page covers `pageSize` log samples (or latest values); after filtering by type and vehicle it can be short or
 * empty, as Samsara's pages can.
 */
import { z } from 'zod';
import { newestPerSignal, type FleetModel, type Sample } from '../fleet-model.ts';
import { servedKey } from '../ground-truth.ts';
import {
  decorationOf,
  hasObdOdometer,
  servedTypeSource,
  toEntry,
  type LatestIndex,
  type MotionIndex,
  type Served,
  type ServedType,
  type StatEntry,
} from './simulator-stats.ts';
import type {
  Pagination,
  VehicleListBody,
  VehicleStatsListBody,
  VehicleStatsListItem,
  VehicleStatsSnapshotBody,
  VehicleStatsSnapshotItem,
} from '../../providers/samsara/wire.ts';

export interface StatsSelection {
  /** The requested types the simulator has data for, in request order. */
  types: readonly ServedType[];
  /** Vehicle indexes asked for; undefined for all. */
  vehicles: ReadonlySet<number> | undefined;
  /** Requested decorations the simulator has data for (feed and history only). */
  decorations: readonly ServedType[];
}

/** When cursors were issued and how long they live. */
export interface CursorClock {
  nowMs: number;
  lifetimeMs: number;
}

export interface PickedEntry {
  sample: Sample;
  type: ServedType;
}

export interface Page {
  picks: PickedEntry[];
  pagination: Pagination;
}

const position = z.number().int().nonnegative();
// `t` is optional so cursors issued before it existed still read (as never expiring).
const issued = { t: position.optional() };
const cursorSchema = z.discriminatedUnion('k', [
  z.object({ k: z.literal('latest'), e: position, o: position, ...issued }).strict(),
  z.object({ k: z.literal('feed'), s: position, ...issued }).strict(),
  z.object({ k: z.literal('history'), s: position, ...issued }).strict(),
  z.object({ k: z.literal('vehicles'), o: position, ...issued }).strict(),
]);
type SimCursor = z.infer<typeof cursorSchema>;

export function encodeCursor(cursor: SimCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** A cursor issued now. */
function issue(cursor: SimCursor, clock: CursorClock): string {
  return encodeCursor({ ...cursor, t: clock.nowMs });
}

/** The cursor `after` names, checked: InvalidCursor if unreadable, ExpiredCursor if older than its lifetime. */
function readAfter(after: string, clock: CursorClock): SimCursor {
  const cursor = decodeCursor(after);
  if (!cursor) throw new InvalidCursor();
  if (cursor.t !== undefined && clock.nowMs - cursor.t > clock.lifetimeMs) throw new ExpiredCursor();
  return cursor;
}

export function decodeCursor(text: string): SimCursor | undefined {
  try {
    const parsed = cursorSchema.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export class InvalidCursor extends Error {}
export class ExpiredCursor extends Error {}

/** A feed page: the latest values when there is no cursor, else every change since it. */
export function feedPage(fleet: FleetModel, selection: StatsSelection, after: string | undefined, pageSize: number, clock: CursorClock): Page {
  const cursor = after ? readAfter(after, clock) : { k: 'latest' as const, e: fleet.endSeq, o: 0 };
  if (cursor.k === 'history' || cursor.k === 'vehicles') throw new InvalidCursor();
  if (cursor.k === 'latest') {
    if (cursor.e > fleet.endSeq) throw new InvalidCursor();
    const picks = pick(latestAsOf(fleet, cursor.e), selection);
    const end = cursor.o + pageSize;
    const hasNextPage = end < picks.length;
    return {
      picks: picks.slice(cursor.o, end),
      pagination: { endCursor: issue(hasNextPage ? { k: 'latest', e: cursor.e, o: end } : { k: 'feed', s: cursor.e }, clock), hasNextPage },
    };
  }
  if (cursor.s > fleet.endSeq) throw new InvalidCursor();
  // A cursor older than the retained log restarts at its oldest sample: what was trimmed is gone.
  const from = Math.max(cursor.s, fleet.startSeq);
  const window = fleet.samplesFrom(from, pageSize);
  const next = from + window.length;
  return { picks: pick(window, selection), pagination: { endCursor: issue({ k: 'feed', s: next }, clock), hasNextPage: next < fleet.endSeq } };
}

/** A history page: samples observed in [startMs, endMs], scanned `pageSize` log samples at a time. */
export function historyPage(
  fleet: FleetModel,
  selection: StatsSelection,
  after: string | undefined,
  range: { startMs: number; endMs: number },
  pageSize: number,
  clock: CursorClock,
): Page {
  const cursor = after ? readAfter(after, clock) : { k: 'history' as const, s: fleet.startSeq };
  if (cursor.k !== 'history' || cursor.s > fleet.endSeq) throw new InvalidCursor();
  const from = Math.max(cursor.s, fleet.startSeq);
  const window = fleet.samplesFrom(from, pageSize);
  const next = from + window.length;
  const inRange = window.filter((s) => s.observedAtMs >= range.startMs && s.observedAtMs <= range.endMs);
  return { picks: pick(inRange, selection), pagination: { endCursor: issue({ k: 'history', s: next }, clock), hasNextPage: next < fleet.endSeq } };
}

/**
 * A page of `GET /fleet/vehicles`: `limit` vehicles from the cursor's offset. The last page has an empty endCursor,
 * which is what the official SDK's pager stops on (it does not read hasNextPage).
 */
export function vehiclesPage(fleet: FleetModel, after: string | undefined, limit: number, clock: CursorClock): VehicleListBody {
  const cursor = after ? readAfter(after, clock) : { k: 'vehicles' as const, o: 0 };
  if (cursor.k !== 'vehicles' || cursor.o > fleet.vehicles.length) throw new InvalidCursor();
  const end = Math.min(cursor.o + limit, fleet.vehicles.length);
  const hasNextPage = end < fleet.vehicles.length;
  const created = new Date(fleet.startMs - 365 * 24 * 3600_000).toISOString();
  const data = fleet.vehicles.slice(cursor.o, end).map((v) => ({
    id: v.samsaraId,
    name: v.name,
    vin: v.vin,
    externalIds: { 'samsara.vin': v.vin },
    createdAtTime: created,
    updatedAtTime: created,
    make: 'Fleetwire',
    model: `Simulated ${v.kind}`,
    tags: [],
  }));
  return { data, pagination: { endCursor: hasNextPage ? issue({ k: 'vehicles', o: end }, clock) : '', hasNextPage } };
}

/** The snapshot: each selected vehicle's newest sample of each type observed at or before `atMs`. */
export function snapshotPicks(fleet: FleetModel, selection: StatsSelection, atMs: number): PickedEntry[] {
  const observed = fleet.samplesFrom(fleet.startSeq).filter((s) => s.observedAtMs <= atMs);
  return pick(newestPerSignal(observed), selection);
}

/**
 * Feed and history bodies: one item per vehicle that has entries, an array per type. Entries of the non-EV types
 * carry the requested decorations (SDK: the `ev*` list entries have no `decorations`); decorations are values, not
 * readings of their own, so the ground truth does not record them.
 */
export function listBody(
  fleet: FleetModel,
  motion: MotionIndex,
  latest: LatestIndex,
  selection: StatsSelection,
  page: Page,
): { body: VehicleStatsListBody; served: Served[] } {
  const served: Served[] = [];
  const items = new Map<number, VehicleStatsListItem>();
  for (const { sample, type } of page.picks) {
    const identity = fleet.vehicles[sample.vehicle]!;
    const { entry, served: readings } = toEntry(type, sample, motion, identity.samsaraId);
    if (selection.decorations.length > 0 && !type.startsWith('ev')) {
      const decorations: Record<string, unknown> = {};
      for (const decoration of selection.decorations) {
        if (decoration === 'obdOdometerMeters' && !hasObdOdometer(sample.vehicle)) continue;
        const at = latest.at(sample.vehicle, servedTypeSource[decoration], sample.observedAtMs);
        if (at) decorations[decoration] = decorationOf(decoration, at, motion);
      }
      (entry as { decorations?: Record<string, unknown> }).decorations = decorations;
    }
    let item = items.get(sample.vehicle);
    if (!item) {
      item = { id: identity.samsaraId, name: identity.name, externalIds: { 'samsara.vin': identity.vin } };
      items.set(sample.vehicle, item);
    }
    // toEntry gives the entry shape that belongs under `type`.
    const lists = item as Partial<Record<ServedType, StatEntry[]>>;
    (lists[type] ??= []).push(entry);
    served.push(...readings);
  }
  const data = [...items].sort(([a], [b]) => a - b).map(([, item]) => item);
  return { body: { data, pagination: page.pagination }, served: oncePerKey(served) };
}

/** Both odometers of one sample are one canonical reading: the ground truth records it once per answer. */
function oncePerKey(served: Served[]): Served[] {
  const seen = new Set<string>();
  return served.filter((reading) => {
    const key = servedKey(reading);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Snapshot body: one object per stat, and Samsara's singular `engineState` key. */
export function snapshotBody(
  fleet: FleetModel,
  motion: MotionIndex,
  selection: StatsSelection,
  picks: readonly PickedEntry[],
): { body: VehicleStatsSnapshotBody; served: Served[] } {
  const served: Served[] = [];
  const items = new Map<number, VehicleStatsSnapshotItem>();
  fleet.vehicles.forEach((identity, index) => {
    if (!selection.vehicles || selection.vehicles.has(index)) {
      items.set(index, { id: identity.samsaraId, name: identity.name, externalIds: { 'samsara.vin': identity.vin } });
    }
  });
  for (const { sample, type } of picks) {
    const item = items.get(sample.vehicle)!;
    const { entry, served: readings } = toEntry(type, sample, motion, item.id);
    const stats = item as Partial<Record<ServedType | 'engineState', StatEntry>>;
    stats[type === 'engineStates' ? 'engineState' : type] = entry;
    served.push(...readings);
  }
  return { body: { data: [...items.values()], pagination: { endCursor: '', hasNextPage: false } }, served: oncePerKey(served) };
}

/** The selected entries a run of samples gives, in log order; one sample can feed two types (both odometers). */
function pick(samples: readonly Sample[], selection: StatsSelection): PickedEntry[] {
  const picks: PickedEntry[] = [];
  for (const sample of samples) {
    if (selection.vehicles && !selection.vehicles.has(sample.vehicle)) continue;
    for (const type of selection.types) {
      if (servedTypeSource[type] !== sample.signal) continue;
      if (type === 'obdOdometerMeters' && !hasObdOdometer(sample.vehicle)) continue;
      picks.push({ sample, type });
    }
  }
  return picks;
}

/** The latest value of each (vehicle, signal) among log samples before position `endSeq`, in log order. */
function latestAsOf(fleet: FleetModel, endSeq: number): Sample[] {
  return newestPerSignal(fleet.samplesFrom(fleet.startSeq, Math.max(0, endSeq - fleet.startSeq)));
}
