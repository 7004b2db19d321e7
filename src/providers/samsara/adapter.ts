/**
 * Samsara as a polled provider: follows the vehicle-stats feed (Samsara's "Vehicle stats feed" / "Telematics Sync"
 * guide), one `after` cursor per group of at most three stat types, since Samsara serves at most three types per
 * call and a cursor is only valid with the parameters it was issued for.
 *
 * The stored cursor is `{ "feeds": { "<types joined by commas>": "<endCursor>" }, "backfills": {...},
 * "obdOdometerVehicles": [...] }`. Keying by the type list means a group that changes in a later release starts a
 * new feed instead of replaying a cursor issued for other parameters.
 *
 * A feed that must start again (Samsara refused its cursor: cursors expire after 30 days, "Pagination" guide; or the
 * group has no cursor although the connection has polled before) is restarted without losing what happened since
 * the last successful poll: a new feed is started first, then `/fleet/vehicles/stats/history` is read from the last
 * success (less `restartOverlapMinutes`) up to the moment the new feed began. That pending history read is part of
 * the cursor, so a poll cut short resumes it. Each restart is written on the poll run as a note.
 */
import { z } from 'zod';
import type { PollAdapter, PollContext, PollPage } from '../poll-adapter.ts';
import { ProviderError } from '../provider-error.ts';
import { CursorRejectedError, createSamsaraClient, defaultTimeoutMs } from './client.ts';
import { samsaraContract, samsaraOptionsSchema, type SamsaraOptions } from './contract.ts';
import { mapVehicleStats } from './mapping.ts';
import { countedTypes, maxTypesPerCall, type SamsaraStatType, type VehicleStatsListResponse } from './wire.ts';

export type SamsaraCredentials = { apiToken: string };

/**
 * The groups polled by default: everything the mapping reads, in three calls. Both odometers are asked for: the
 * OBD one wins for every vehicle that has it, the GPS one counts for vehicles without OBD coverage (mapping.ts).
 * The first group keeps the key of earlier releases, so its stored cursor carries on.
 */
export const defaultTypeGroups: readonly (readonly SamsaraStatType[])[] = [
  ['gps', 'evStateOfChargeMilliPercent', 'evChargingStatus'],
  ['obdOdometerMeters', 'gpsOdometerMeters', 'engineStates'],
  ['evAverageBatteryTemperatureMilliCelsius'],
];

export interface SamsaraAdapterOptions {
  typeGroups?: readonly (readonly SamsaraStatType[])[];
  timeoutMs?: number;
  /**
   * Pages per group in one poll (feed and history together). Samsara says "call again at once" while hasNextPage
   * is true; the cap keeps one run bounded if it never says otherwise, and the next run resumes from the cursor.
   */
  maxPagesPerGroup?: number;
  /** The clock that fixes the end of a restart's history read; injectable for tests. */
  now?: () => number;
}

/** A restart's history read still to do for one group: [startTime, endTime], and the history cursor reached. */
export interface SamsaraBackfill {
  startTime: string;
  endTime: string;
  after?: string;
}

export interface SamsaraCursor {
  feeds: Record<string, string>;
  backfills?: Record<string, SamsaraBackfill>;
  /** Vehicles seen with an OBD odometer: their GPS odometer is never mapped (see mapping.ts). */
  obdOdometerVehicles?: string[];
}

/** Vehicles remembered as having an OBD odometer; past this the ones seen longest ago are forgotten first. */
export const maxRememberedObdVehicles = 50_000;

const backfillSchema = z.object({ startTime: z.string().min(1), endTime: z.string().min(1), after: z.string().optional() });
const cursorSchema = z.object({
  feeds: z.record(z.string(), z.string()),
  backfills: z.record(z.string(), backfillSchema).optional(),
  obdOdometerVehicles: z.array(z.string()).optional(),
});

export const groupKey = (types: readonly SamsaraStatType[]) => types.join(',');

/**
 * The stored cursor, or none. A cursor we cannot read (written by a far older release, or edited by hand) restarts
 * every feed, as a refused one does: the poll is not stuck forever, and history covers the gap.
 */
export function readCursor(stored: unknown): Required<SamsaraCursor> {
  const parsed = cursorSchema.safeParse(stored);
  if (!parsed.success) return { feeds: {}, backfills: {}, obdOdometerVehicles: [] };
  return {
    feeds: { ...parsed.data.feeds },
    backfills: { ...parsed.data.backfills },
    obdOdometerVehicles: [...(parsed.data.obdOdometerVehicles ?? [])],
  };
}

export function createSamsaraPollAdapter(options: SamsaraAdapterOptions = {}): PollAdapter<SamsaraCredentials> {
  const groups = options.typeGroups ?? defaultTypeGroups;
  for (const group of groups) {
    if (group.length === 0 || countedTypes(group) > maxTypesPerCall) {
      throw new Error(`each Samsara type group holds 1 to ${maxTypesPerCall} types, got [${group.join(', ')}]`);
    }
  }
  const settings = { maxPages: options.maxPagesPerGroup ?? 1000, timeoutMs: options.timeoutMs ?? defaultTimeoutMs, now: options.now ?? Date.now };
  return {
    contract: samsaraContract,
    poll: (context) => pollFeeds(context, groups, settings),
  };
}

export const samsaraPollAdapter: PollAdapter<SamsaraCredentials> = createSamsaraPollAdapter();

interface GroupRun {
  types: readonly SamsaraStatType[];
  key: string;
  pages: number;
  restarted: boolean;
  /** Requests answered with a refusal, counted on the group's next page. */
  refused: number;
}

/**
 * Round-robin over the groups, one request each per round, until no group has more to read. Every page is yielded,
 * empty ones too: an empty page still moves its cursor. Vehicle ids are never passed: a vehicle the workspace has
 * not bound must still reach ingest, where the operator sees it as `unknown_device`.
 */
async function* pollFeeds(
  context: PollContext<SamsaraCredentials>,
  groups: readonly (readonly SamsaraStatType[])[],
  settings: { maxPages: number; timeoutMs: number; now: () => number },
): AsyncGenerator<PollPage> {
  const parsedOptions = samsaraOptionsSchema.safeParse(context.options ?? {});
  const options: SamsaraOptions = parsedOptions.success ? parsedOptions.data : samsaraOptionsSchema.parse({});
  const client = createSamsaraClient({
    baseUrl: context.baseUrl,
    apiToken: context.credentials.apiToken,
    timeoutMs: settings.timeoutMs,
    apiVersion: options.apiVersion,
  });
  const stored = readCursor(context.cursor);
  // Only the current groups' cursors are carried on; one for a group that no longer exists is dropped.
  const state = { feeds: {} as Record<string, string>, backfills: {} as Record<string, SamsaraBackfill>, obd: new Set(stored.obdOdometerVehicles) };
  const runs: GroupRun[] = groups.map((types) => ({ types, key: groupKey(types), pages: 0, restarted: false, refused: 0 }));
  for (const { key } of runs) {
    if (stored.feeds[key] !== undefined) state.feeds[key] = stored.feeds[key];
    if (stored.backfills[key] !== undefined) state.backfills[key] = stored.backfills[key];
  }
  const snapshot = (): SamsaraCursor => ({
    feeds: { ...state.feeds },
    ...(Object.keys(state.backfills).length > 0 ? { backfills: { ...state.backfills } } : {}),
    ...(state.obd.size > 0 ? { obdOdometerVehicles: [...state.obd] } : {}),
  });
  const page = (group: GroupRun, response: VehicleStatsListResponse, notes: string[]): PollPage => {
    const mapped = mapVehicleStats(response.data, { obdOdometerVehicles: state.obd });
    for (const id of mapped.obdOdometerVehicles) {
      // Re-inserted, so the set stays ordered by when a vehicle was last seen with OBD.
      state.obd.delete(id);
      state.obd.add(id);
    }
    while (state.obd.size > maxRememberedObdVehicles) state.obd.delete(state.obd.values().next().value!);
    const requests = 1 + group.refused;
    group.refused = 0;
    return { devices: mapped.devices, cursor: snapshot(), requests, skipped: mapped.skipped, ...(notes.length > 0 ? { notes } : {}) };
  };

  /** Notes waiting for the next page of their group: why its feed restarted. */
  const pending = new Map<string, string[]>();
  const restart = (group: GroupRun, why: string) => {
    // A pending history read is never replaced here: while one is pending it goes before the feed's next call,
    // so a refused feed cursor is only ever met with none pending.
    group.restarted = true;
    delete state.feeds[group.key];
    pending.set(group.key, [why]);
  };
  for (const group of runs) {
    if (state.feeds[group.key] === undefined && state.backfills[group.key] === undefined && context.lastSuccessAt !== null) {
      restart(group, `Samsara feed ${group.key} had no cursor although the connection polled before (a new type group, or a stored cursor that could not be read)`);
    }
  }

  let active = runs;
  while (active.length > 0) {
    const stillActive: GroupRun[] = [];
    for (const group of active) {
      const more = await turn(group);
      if (more.page) yield more.page;
      if (more.again && group.pages < settings.maxPages) stillActive.push(group);
    }
    active = stillActive;
  }

  /** One request for a group: its pending history read if its new feed has begun, else its feed. */
  async function turn(group: GroupRun): Promise<{ page?: PollPage; again: boolean }> {
    const backfill = state.backfills[group.key];
    if (backfill && state.feeds[group.key] !== undefined) return historyTurn(group, backfill);
    return feedTurn(group);
  }

  async function feedTurn(group: GroupRun): Promise<{ page?: PollPage; again: boolean }> {
    const after = state.feeds[group.key];
    let response: VehicleStatsListResponse;
    try {
      response = await client.statsFeed({ types: group.types, after, signal: context.signal });
    } catch (error) {
      if (!(error instanceof CursorRejectedError) || group.restarted) throw error;
      group.refused += 1;
      restart(group, `Samsara refused the feed cursor of ${group.key} (expired after 30 days, or not valid for these parameters): ${error.message}`);
      return { again: true };
    }
    group.pages += 1;
    const { endCursor, hasNextPage } = response.pagination;
    if (hasNextPage && (endCursor === '' || endCursor === after)) {
      throw new ProviderError('malformed_response', `Samsara feed for ${group.key} says there is a next page but gives no new cursor`);
    }
    const notes = pending.get(group.key) ?? [];
    pending.delete(group.key);
    if (after === undefined && group.restarted) notes.push(...beginBackfill(group, notes.length > 0));
    // An empty endCursor carries no position; keeping the old one re-reads at worst, and ingest drops duplicates.
    if (endCursor !== '') state.feeds[group.key] = endCursor;
    const again = hasNextPage || (state.backfills[group.key] !== undefined && state.feeds[group.key] !== undefined);
    return { page: page(group, response, notes), again };
  }

  /**
   * Called once the restarted feed's first page is in: the history read from the last success to now, which is
   * after the new feed began, so together they leave no gap (the overlap is absorbed by ingest as duplicates).
   */
  function beginBackfill(group: GroupRun, explained: boolean): string[] {
    const endMs = settings.now();
    const lastSuccessMs = context.lastSuccessAt === null ? Number.NaN : Date.parse(context.lastSuccessAt);
    if (!Number.isFinite(lastSuccessMs)) {
      return [
        `${explained ? '' : `Samsara feed ${group.key} restarted. `}The connection never polled successfully, so it started from the latest values; nothing older is read.`,
      ];
    }
    const startMs = Math.min(lastSuccessMs - options.restartOverlapMinutes * 60_000, endMs);
    const range = { startTime: new Date(startMs).toISOString(), endTime: new Date(endMs).toISOString() };
    state.backfills[group.key] = range;
    return [`A new feed was started; the gap is read from /fleet/vehicles/stats/history from ${range.startTime} to ${range.endTime}.`];
  }

  async function historyTurn(group: GroupRun, backfill: SamsaraBackfill): Promise<{ page?: PollPage; again: boolean }> {
    let response: VehicleStatsListResponse;
    try {
      response = await client.statsHistory({ types: group.types, startTime: backfill.startTime, endTime: backfill.endTime, after: backfill.after, signal: context.signal });
    } catch (error) {
      if (!(error instanceof CursorRejectedError) || backfill.after === undefined) throw error;
      group.refused += 1;
      // The history read starts over from its beginning; what it read already comes again, as duplicates.
      state.backfills[group.key] = { startTime: backfill.startTime, endTime: backfill.endTime };
      pending.set(group.key, [`Samsara refused the history cursor of ${group.key}; the history read from ${backfill.startTime} starts over`]);
      return { again: true };
    }
    group.pages += 1;
    const { endCursor, hasNextPage } = response.pagination;
    if (hasNextPage && (endCursor === '' || endCursor === backfill.after)) {
      throw new ProviderError('malformed_response', `Samsara history for ${group.key} says there is a next page but gives no new cursor`);
    }
    const notes = pending.get(group.key) ?? [];
    pending.delete(group.key);
    if (hasNextPage) {
      state.backfills[group.key] = { ...backfill, after: endCursor };
    } else {
      delete state.backfills[group.key];
      notes.push(`Samsara history for ${group.key} from ${backfill.startTime} to ${backfill.endTime} read in full; the feed carries on.`);
    }
    // Whatever the history read did, the feed itself may have more: one more turn reads it.
    return { page: page(group, response, notes), again: true };
  }
}
