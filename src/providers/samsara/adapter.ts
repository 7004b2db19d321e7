/**
 * Samsara as a polled provider: follows the vehicle-stats feed (Samsara's "Vehicle stats feed" guide), one
 * `after` cursor per group of at most three stat types, since Samsara serves at most three types per call and a
 * cursor is only valid with the parameters it was issued for.
 *
 * The stored cursor is `{ "feeds": { "<types joined by commas>": "<endCursor>" } }`. Keying by the type list means
 * a group that changes in a later release starts afresh (from the latest values) instead of replaying a cursor
 * issued for other parameters.
 */
import { z } from 'zod';
import type { PollAdapter, PollContext, PollPage } from '../poll-adapter.ts';
import { ProviderError } from '../provider-error.ts';
import { createSamsaraClient, defaultTimeoutMs } from './client.ts';
import { samsaraContract } from './contract.ts';
import { mapVehicleStats } from './mapping.ts';
import { maxTypesPerCall, type SamsaraStatType } from './wire.ts';

export type SamsaraCredentials = { apiToken: string };

/**
 * The groups polled by default: everything the mapping reads, in two calls. `gpsOdometerMeters` is left out: it
 * only counts after a manual reading has been entered and would contradict the OBD odometer of the same vehicle.
 */
export const defaultTypeGroups: readonly (readonly SamsaraStatType[])[] = [
  ['gps', 'evStateOfChargeMilliPercent', 'evChargingStatus'],
  ['obdOdometerMeters', 'engineStates', 'evAverageBatteryTemperatureMilliCelsius'],
];

export interface SamsaraAdapterOptions {
  typeGroups?: readonly (readonly SamsaraStatType[])[];
  timeoutMs?: number;
  /**
   * Pages per group in one poll. Samsara says "call again at once" while hasNextPage is true; the cap keeps one
   * run bounded if it never says otherwise, and the next run resumes from the committed cursor.
   */
  maxPagesPerGroup?: number;
}

export interface SamsaraCursor {
  feeds: Record<string, string>;
}

const cursorSchema = z.object({ feeds: z.record(z.string(), z.string()) });

export const groupKey = (types: readonly SamsaraStatType[]) => types.join(',');

/**
 * The stored cursor, or none. A cursor we cannot read (written by a far older release, or edited by hand) restarts
 * every feed from the latest values: the snapshot stays current and the poll is not stuck forever.
 */
export function readCursor(stored: unknown): SamsaraCursor {
  const parsed = cursorSchema.safeParse(stored);
  return { feeds: parsed.success ? { ...parsed.data.feeds } : {} };
}

export function createSamsaraPollAdapter(options: SamsaraAdapterOptions = {}): PollAdapter<SamsaraCredentials> {
  const groups = options.typeGroups ?? defaultTypeGroups;
  for (const group of groups) {
    if (group.length === 0 || group.length > maxTypesPerCall) {
      throw new Error(`each Samsara type group holds 1 to ${maxTypesPerCall} types, got [${group.join(', ')}]`);
    }
  }
  const maxPages = options.maxPagesPerGroup ?? 1000;
  return {
    contract: samsaraContract,
    poll: (context) => pollFeeds(context, groups, maxPages, options.timeoutMs ?? defaultTimeoutMs),
  };
}

export const samsaraPollAdapter: PollAdapter<SamsaraCredentials> = createSamsaraPollAdapter();

/**
 * Round-robin over the groups, one page each per round, until no group has a next page. Every page is yielded,
 * empty ones too: an empty page still moves its cursor. Vehicle ids are never passed: a vehicle the workspace has
 * not bound must still reach ingest, where the operator sees it as `unknown_device`.
 */
async function* pollFeeds(
  context: PollContext<SamsaraCredentials>,
  groups: readonly (readonly SamsaraStatType[])[],
  maxPages: number,
  timeoutMs: number,
): AsyncGenerator<PollPage> {
  const client = createSamsaraClient({ baseUrl: context.baseUrl, apiToken: context.credentials.apiToken, timeoutMs });
  const stored = readCursor(context.cursor);
  let active = groups.map((types) => ({ types, key: groupKey(types), pages: 0 }));
  // Only the current groups' cursors are carried on; one for a group that no longer exists is dropped.
  const cursor: SamsaraCursor = { feeds: {} };
  for (const { key } of active) if (stored.feeds[key] !== undefined) cursor.feeds[key] = stored.feeds[key];
  while (active.length > 0) {
    const stillActive: typeof active = [];
    for (const group of active) {
      const after = cursor.feeds[group.key];
      const response = await client.statsFeed({ types: group.types, after, signal: context.signal });
      const { endCursor, hasNextPage } = response.pagination;
      if (hasNextPage && (endCursor === '' || endCursor === after)) {
        throw new ProviderError('malformed_response', `Samsara feed for ${group.key} says there is a next page but gives no new cursor`);
      }
      // An empty endCursor carries no position; keeping the old one re-reads at worst, and ingest drops duplicates.
      if (endCursor !== '') cursor.feeds[group.key] = endCursor;
      group.pages += 1;
      const { devices, skipped } = mapVehicleStats(response.data);
      yield { devices, cursor: { feeds: { ...cursor.feeds } } satisfies SamsaraCursor, requests: 1, skipped };
      if (hasNextPage && group.pages < maxPages) stillActive.push(group);
    }
    active = stillActive;
  }
}
