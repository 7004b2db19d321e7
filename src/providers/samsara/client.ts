/**
 * Typed HTTP client for Samsara's vehicle-stats endpoints. Follows the Samsara API reference
 * (developers.samsara.com: "getVehicleStatsFeed", "getVehicleStatsHistory", "getVehicleStats", and the
 * "Rate limits", "Response codes" and "Versioning" guides). It fetches and validates; it does not map and does not
 * retry: the poll runner decides by the ProviderError class, which every failure is turned into here.
 *
 * Every request carries `X-Samsara-Version`, so the response shapes are the ones this folder was written for
 * whatever version the token defaults to.
 */
import { ProviderError } from '../provider-error.ts';
import { providerFetch, redact, statusError } from '../provider-http.ts';
import {
  countedTypes,
  errorBodySchema,
  maxTypesPerCall,
  samsaraApiVersion,
  vehicleStatsListResponseSchema,
  type SamsaraStatType,
  type VehicleStatsListResponse,
  type VehicleStatsSnapshotResponse,
} from './wire.ts';

export const defaultTimeoutMs = 10_000;

export interface SamsaraClientOptions {
  baseUrl: string;
  apiToken: string;
  /** Per request, from sending to the last body byte. */
  timeoutMs?: number;
  /** Per answer, error pages included; default the shared 16 MiB. */
  maxBodyBytes?: number;
  /** `X-Samsara-Version` (`YYYY-MM-DD`); default {@link samsaraApiVersion}. */
  apiVersion?: string;
}

/**
 * Samsara answered 400 to a request that carried an `after` cursor. Samsara documents neither the status nor the
 * message of an expired (30 days) or otherwise refused cursor and asks clients not to depend on messages, so this
 * is decided by the status and by the request alone; whoever catches it retries without the cursor, and a 400 that
 * was about something else comes back on that retry as a plain `permanent` error.
 */
export class CursorRejectedError extends ProviderError {
  constructor(message: string) {
    super('permanent', message);
    this.name = 'CursorRejectedError';
  }
}

export interface StatsQuery {
  /** One to three types (Samsara's limit). */
  types: readonly SamsaraStatType[];
  vehicleIds?: readonly string[];
  /** The endCursor of the previous page; absent or empty starts from the latest values (feed). */
  after?: string;
  signal?: AbortSignal;
}

export interface StatsHistoryQuery extends StatsQuery {
  /** RFC 3339. */
  startTime: string;
  endTime: string;
}

export interface StatsSnapshotQuery extends Omit<StatsQuery, 'after'> {
  /** RFC 3339; default now. */
  time?: string;
}

export interface SamsaraClient {
  statsFeed(query: StatsQuery): Promise<VehicleStatsListResponse>;
  statsHistory(query: StatsHistoryQuery): Promise<VehicleStatsListResponse>;
  statsSnapshot(query: StatsSnapshotQuery): Promise<VehicleStatsSnapshotResponse>;
}

export function createSamsaraClient(options: SamsaraClientOptions): SamsaraClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const request = {
    token: options.apiToken,
    timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
    maxBodyBytes: options.maxBodyBytes,
    apiVersion: options.apiVersion ?? samsaraApiVersion,
  };
  const get = (path: string, params: Record<string, string | undefined>, signal: AbortSignal | undefined) =>
    getJson(`${base}${path}`, path, params, request, signal);

  return {
    statsFeed: async (q) => get('/fleet/vehicles/stats/feed', { ...common(q), after: q.after || undefined }, q.signal),
    statsHistory: async (q) =>
      get(
        '/fleet/vehicles/stats/history',
        { ...common(q), after: q.after || undefined, startTime: q.startTime, endTime: q.endTime },
        q.signal,
      ),
    statsSnapshot: async (q) => get('/fleet/vehicles/stats', { ...common(q), time: q.time }, q.signal),
  };
}

function common(query: Pick<StatsQuery, 'types' | 'vehicleIds'>): Record<string, string | undefined> {
  if (query.types.length === 0 || countedTypes(query.types) > maxTypesPerCall) {
    // Our own mistake, not Samsara's answer: fail before spending a request on a guaranteed 400.
    throw new ProviderError('permanent', `Samsara takes 1 to ${maxTypesPerCall} stat types per call (auxInput3-10 count as one), got ${query.types.join(',')}`);
  }
  return {
    types: query.types.join(','),
    vehicleIds: query.vehicleIds && query.vehicleIds.length > 0 ? query.vehicleIds.join(',') : undefined,
  };
}

async function getJson(
  url: string,
  path: string,
  params: Record<string, string | undefined>,
  options: { token: string; timeoutMs: number; maxBodyBytes: number | undefined; apiVersion: string },
  signal: AbortSignal | undefined,
): Promise<VehicleStatsListResponse> {
  const target = new URL(url);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) target.searchParams.set(key, value);
  const what = `Samsara GET ${path}`;
  const secrets = [options.token];
  const answer = await providerFetch({
    url: target,
    headers: { authorization: `Bearer ${options.token}`, accept: 'application/json', 'x-samsara-version': options.apiVersion },
    what,
    timeoutMs: options.timeoutMs,
    signal,
    maxBodyBytes: options.maxBodyBytes,
    secrets,
  });
  if (!answer.ok) {
    const detail = errorDetail(answer.text);
    if (answer.status === 400 && params.after !== undefined) {
      throw new CursorRejectedError(redact(`${what}: answered 400 to a request with a cursor${detail}`, secrets));
    }
    throw statusError(what, answer, secrets, detail);
  }

  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    throw new ProviderError('malformed_response', `${what}: answered ${answer.status} with a body that is not JSON (${answer.text.length} bytes)`);
  }
  const parsed = vehicleStatsListResponseSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new ProviderError('malformed_response', redact(`${what}: unexpected response shape at ${where}: ${issue?.message ?? 'invalid'}`, secrets));
  }
  return parsed.data;
}

/** Samsara's error body, for people reading the health page (Samsara asks clients not to depend on its text). */
function errorDetail(text: string): string {
  try {
    const body = errorBodySchema.safeParse(JSON.parse(text));
    if (!body.success) return '';
    const message = body.data.message ? `: ${body.data.message.slice(0, 200)}` : '';
    const requestId = body.data.requestId ? ` (request ${body.data.requestId.slice(0, 64)})` : '';
    return `${message}${requestId}`;
  } catch {
    // An error page that is not JSON (a proxy's HTML, say): the status alone classifies it.
    return '';
  }
}
