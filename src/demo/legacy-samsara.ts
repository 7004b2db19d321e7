/**
 * The legacy poller's own Samsara integration, written as an older system would have written it against Samsara's
 * "Vehicle stats feed" guide (developers.samsara.com, `GET /fleet/vehicles/stats/feed`): a feed per group of at most
 * three stat types, each followed with its `after` cursor, and a small mapping of its own. Nothing of Fleetwire's
 * Samsara provider is used: a parity report compares two independent integrations, as it would in a real migration.
 */
import type { ChargingState } from '../canonical/signals.ts';
import type { CanonicalReading } from '../canonical/update.ts';

/** The feeds it follows: Samsara serves at most three types per call, so the odometers come on a feed of their own. */
export const legacyFeeds: readonly (readonly string[])[] = [
  ['gps', 'evStateOfChargeMilliPercent', 'evChargingStatus'],
  ['obdOdometerMeters', 'gpsOdometerMeters'],
];

/** One reading of one Samsara vehicle, with its observed time as a number for the lag. */
export interface LegacyReading {
  externalId: string;
  observedMs: number;
  reading: CanonicalReading;
}

export interface FeedRead {
  readings: LegacyReading[];
  /** Where the next read starts: the last page's endCursor. */
  cursor: string | undefined;
}

export interface SamsaraAccess {
  samsaraUrl: string;
  apiToken: string;
  timeoutMs: number;
  signal: AbortSignal;
}

/** A Samsara answer the poller could not use; the message names the endpoint and status, never the token. */
export class SamsaraReadError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'SamsaraReadError';
  }
}

/** Pages of one feed in one poll at most; the next poll carries on from the cursor reached. */
const maxPagesPerRead = 50;

/**
 * Reads one feed from `after` until Samsara says there is no next page (or {@link maxPagesPerRead}). All or nothing:
 * a page that fails discards the read, and the next poll reads it again from the same cursor.
 */
export async function readFeed(access: SamsaraAccess, types: readonly string[], after: string | undefined): Promise<FeedRead> {
  const readings: LegacyReading[] = [];
  let cursor = after;
  for (let page = 0; page < maxPagesPerRead; page += 1) {
    const body = await getFeedPage(access, types, cursor);
    readings.push(...mapLegacyStats(body.data));
    if (body.endCursor !== '') cursor = body.endCursor;
    if (!body.hasNextPage) break;
  }
  return { readings, cursor };
}

async function getFeedPage(access: SamsaraAccess, types: readonly string[], after: string | undefined) {
  const url = new URL(`${access.samsaraUrl.replace(/\/+$/, '')}/fleet/vehicles/stats/feed`);
  url.searchParams.set('types', types.join(','));
  if (after) url.searchParams.set('after', after);
  const what = `Samsara GET /fleet/vehicles/stats/feed (${types.join(',')})`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${access.apiToken}`, accept: 'application/json' },
      signal: AbortSignal.any([access.signal, AbortSignal.timeout(access.timeoutMs)]),
    });
  } catch (error) {
    throw new SamsaraReadError(`${what}: no answer (${error instanceof Error ? error.name : 'error'})`, undefined);
  }
  const text = await response.text().catch(() => '');
  if (!response.ok) throw new SamsaraReadError(`${what}: answered ${response.status}`, response.status);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SamsaraReadError(`${what}: answered ${response.status} with a body that is not JSON`, response.status);
  }
  const body = json as { data?: unknown; pagination?: { endCursor?: unknown; hasNextPage?: unknown } } | null;
  const pagination = body?.pagination;
  if (!Array.isArray(body?.data) || typeof pagination?.endCursor !== 'string' || typeof pagination.hasNextPage !== 'boolean') {
    throw new SamsaraReadError(`${what}: answered an unexpected shape`, response.status);
  }
  if (pagination.hasNextPage && (pagination.endCursor === '' || pagination.endCursor === after)) {
    throw new SamsaraReadError(`${what}: says there is a next page but gives no new cursor`, response.status);
  }
  return { data: body.data as unknown[], endCursor: pagination.endCursor, hasNextPage: pagination.hasNextPage };
}

const chargingCodes: Record<number, ChargingState> = { 2: 'charging', 1: 'not_charging', 0: 'unknown' };

type Entry = Record<string, unknown>;

/**
 * Feed items to readings: position, state of charge (milli-percent), charging status (Samsara's codes) and the
 * odometer (metres; the OBD one where the vehicle reports it, else the GPS one). Every reading keeps the time
 * Samsara gave its entry. Pure; an entry it cannot read is left out.
 */
export function mapLegacyStats(items: readonly unknown[]): LegacyReading[] {
  const out: LegacyReading[] = [];
  for (const item of items) {
    if (!isEntry(item) || typeof item.id !== 'string' || item.id === '') continue;
    const externalId = item.id;
    const each = (key: string, read: (entry: Entry, observedAt: string) => CanonicalReading | undefined) => {
      const list = item[key];
      if (!Array.isArray(list)) return;
      for (const entry of list) {
        if (!isEntry(entry) || typeof entry.time !== 'string') continue;
        const observedMs = Date.parse(entry.time);
        if (!Number.isFinite(observedMs)) continue;
        const reading = read(entry, new Date(observedMs).toISOString());
        if (reading) out.push({ externalId, observedMs, reading });
      }
    };
    each('gps', (e, observedAt) =>
      typeof e.latitude === 'number' && typeof e.longitude === 'number' ? { signal: 'location', value: { lat: e.latitude, lon: e.longitude }, observedAt } : undefined,
    );
    each('evStateOfChargeMilliPercent', (e, observedAt) => (typeof e.value === 'number' ? { signal: 'soc_pct', value: e.value / 1000, observedAt } : undefined));
    each('evChargingStatus', (e, observedAt) => {
      const state = typeof e.value === 'number' ? chargingCodes[e.value] : undefined;
      return state === undefined ? undefined : { signal: 'charging_state', value: state, observedAt };
    });
    const obd = Array.isArray(item.obdOdometerMeters) && item.obdOdometerMeters.length > 0;
    each(obd ? 'obdOdometerMeters' : 'gpsOdometerMeters', (e, observedAt) =>
      typeof e.value === 'number' ? { signal: 'odometer_km', value: e.value / 1000, observedAt } : undefined,
    );
  }
  return out;
}

function isEntry(value: unknown): value is Entry {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
