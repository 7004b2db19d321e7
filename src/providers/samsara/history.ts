/**
 * Samsara's history path for backfill: `GET /fleet/vehicles/stats/history` (developers.samsara.com, guide
 * "Historical Report" and reference "getVehicleStatsHistory": `startTime` and `endTime` required, RFC 3339;
 * `types` at most three; `vehicleIds` comma-separated; `after` = the previous page's `endCursor` while
 * `hasNextPage`). The same type groups as the feed (adapter.ts), each read through the window in turn, every entry
 * mapped by the feed's own mapping.
 *
 * The position inside a window is `{ "group": <index>, "after"?: <endCursor> }`. Samsara documents no limit on how
 * far back history goes, nor on the length of `[startTime, endTime]`: the worker's windows keep each read short,
 * and how far back a connection may ask is its `historyDays` option (docs/PROVIDERS.md).
 */
import { z } from 'zod';
import type { HistoryAdapter, HistoryContext, HistoryPage, HistoryQuery } from '../history-adapter.ts';
import { ProviderError } from '../provider-error.ts';
import { defaultTypeGroups, type SamsaraCredentials } from './adapter.ts';
import { createSamsaraClient, defaultTimeoutMs } from './client.ts';
import { samsaraContract, samsaraOptionsSchema } from './contract.ts';
import { mapVehicleStats } from './mapping.ts';
import type { SamsaraStatType } from './wire.ts';

/** How far back a Samsara connection asks by default when its options name no `historyDays` (not documented). */
export const samsaraDefaultHistoryDays = 365;

export interface SamsaraHistoryOptions {
  typeGroups?: readonly (readonly SamsaraStatType[])[];
  timeoutMs?: number;
  /** One window of a backfill; default one hour. */
  windowMs?: number;
}

const positionSchema = z.object({ group: z.number().int().min(0), after: z.string().min(1).optional() }).strict();
type Position = z.infer<typeof positionSchema>;

export function createSamsaraHistoryAdapter(settings: SamsaraHistoryOptions = {}): HistoryAdapter<SamsaraCredentials> {
  const groups = settings.typeGroups ?? defaultTypeGroups;
  const timeoutMs = settings.timeoutMs ?? defaultTimeoutMs;
  return {
    contract: samsaraContract,
    windowMs: settings.windowMs ?? 3600_000,
    keepsDays: (options) => {
      const parsed = samsaraOptionsSchema.safeParse(options);
      return (parsed.success ? parsed.data.historyDays : undefined) ?? samsaraDefaultHistoryDays;
    },
    fetchHistory: (context, query) => readWindow(context, query, groups, timeoutMs),
  };
}

async function* readWindow(
  context: HistoryContext<SamsaraCredentials>,
  query: HistoryQuery,
  groups: readonly (readonly SamsaraStatType[])[],
  timeoutMs: number,
): AsyncGenerator<HistoryPage> {
  const options = samsaraOptionsSchema.safeParse(context.options ?? {});
  const client = createSamsaraClient({
    baseUrl: context.baseUrl,
    apiToken: context.credentials.apiToken,
    timeoutMs,
    ...(options.success ? { apiVersion: options.data.apiVersion } : {}),
  });
  const stored = positionSchema.safeParse(query.cursor);
  // A position this code did not write (or none) starts the window over: duplicates are absorbed by ingest.
  let position: Position = stored.success && stored.data.group < groups.length ? stored.data : { group: 0 };
  const wanted = new Set(query.devices);
  // Samsara's OBD-over-GPS odometer rule (mapping.ts) holds within the window as it does within a feed.
  const obd = new Set<string>();
  for (;;) {
    const types = groups[position.group]!;
    const response = await client.statsHistory({
      types,
      vehicleIds: query.devices,
      startTime: query.from,
      endTime: query.to,
      ...(position.after ? { after: position.after } : {}),
      signal: context.signal,
    });
    const { endCursor, hasNextPage } = response.pagination;
    if (hasNextPage && (endCursor === '' || endCursor === position.after)) {
      throw new ProviderError('malformed_response', `Samsara history for ${types.join(',')} says there is a next page but gives no new cursor`);
    }
    const mapped = mapVehicleStats(response.data, { obdOdometerVehicles: obd });
    for (const id of mapped.obdOdometerVehicles) obd.add(id);
    const next: Position | undefined = hasNextPage
      ? { group: position.group, after: endCursor }
      : position.group + 1 < groups.length
        ? { group: position.group + 1 }
        : undefined;
    yield {
      devices: mapped.devices.filter((device) => wanted.has(device.externalDeviceId)),
      cursor: next ?? null,
      final: next === undefined,
      requests: 1,
      skipped: mapped.skipped,
    };
    if (!next) return;
    position = next;
  }
}

export const samsaraHistoryAdapter: HistoryAdapter<SamsaraCredentials> = createSamsaraHistoryAdapter();
