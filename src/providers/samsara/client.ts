/**
 * Typed HTTP client for Samsara's vehicle-stats endpoints. Follows the Samsara API reference
 * (developers.samsara.com: "getVehicleStatsFeed", "getVehicleStatsHistory", "getVehicleStats", and the
 * "Rate limits" and "Response codes" guides). It fetches and validates; it does not map and does not retry: the
 * poll runner decides by the ProviderError class, which every failure is turned into here.
 */
import { ProviderError, classifyHttpStatus, parseRetryAfter } from '../provider-error.ts';
import {
  errorBodySchema,
  maxTypesPerCall,
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
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const get = (path: string, params: Record<string, string | undefined>, signal: AbortSignal | undefined) =>
    getJson(`${base}${path}`, path, params, options.apiToken, timeoutMs, signal);

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
  if (query.types.length === 0 || query.types.length > maxTypesPerCall) {
    // Our own mistake, not Samsara's answer: fail before spending a request on a guaranteed 400.
    throw new ProviderError('permanent', `Samsara takes 1 to ${maxTypesPerCall} stat types per call, got ${query.types.length}`);
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
  token: string,
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
): Promise<VehicleStatsListResponse> {
  const target = new URL(url);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) target.searchParams.set(key, value);
  const what = `Samsara GET ${path}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
  const aborted = (): ProviderError | undefined => {
    if (callerSignal?.aborted) return new ProviderError('transient', `${what}: cancelled by the caller`);
    if (timeout.aborted) return new ProviderError('transient', `${what}: no complete answer within ${timeoutMs} ms`);
    return undefined;
  };

  let response: Response;
  try {
    response = await fetch(target, {
      method: 'GET',
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      // A redirect would carry the token to wherever it points; a base URL that redirects is a configuration error.
      redirect: 'manual',
      signal,
    });
  } catch (error) {
    throw aborted() ?? new ProviderError('transient', redact(`${what}: network error: ${describe(error)}`, token));
  }

  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    // Headers arrived, then the body stopped short of its length: what we have cannot be read.
    throw aborted() ?? new ProviderError('malformed_response', redact(`${what}: body ended early (${describe(error)})`, token));
  }

  if (response.status < 200 || response.status >= 300) throw statusError(what, response, text, token);

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProviderError('malformed_response', `${what}: answered ${response.status} with a body that is not JSON (${text.length} bytes)`);
  }
  const parsed = vehicleStatsListResponseSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new ProviderError('malformed_response', redact(`${what}: unexpected response shape at ${where}: ${issue?.message ?? 'invalid'}`, token));
  }
  return parsed.data;
}

function statusError(what: string, response: Response, text: string, token: string): ProviderError {
  if (response.status >= 300 && response.status < 400) {
    return new ProviderError('permanent', `${what}: unexpected redirect (${response.status}); check the base URL`);
  }
  const errorClass = classifyHttpStatus(response.status);
  let detail = '';
  try {
    const body = errorBodySchema.safeParse(JSON.parse(text));
    if (body.success) {
      // Samsara asks clients not to depend on the message text; it is for people reading the health page.
      const message = body.data.message ? `: ${body.data.message.slice(0, 200)}` : '';
      const requestId = body.data.requestId ? ` (request ${body.data.requestId.slice(0, 64)})` : '';
      detail = `${message}${requestId}`;
    }
  } catch {
    // An error page that is not JSON (a proxy's HTML, say): the status alone classifies it.
  }
  const retryAfterMs = errorClass === 'rate_limited' ? parseRetryAfter(response.headers.get('retry-after')) : undefined;
  return new ProviderError(errorClass, redact(`${what}: answered ${response.status}${detail}`, token), retryAfterMs);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' && 'code' in cause ? ` ${String((cause as { code: unknown }).code)}` : '';
  const causeMessage = cause instanceof Error ? `: ${cause.message}` : '';
  return `${error.message}${code}${causeMessage}`.slice(0, 300);
}

/** Whatever text reaches a message, the token never does (a server could echo it back). */
function redact(text: string, token: string): string {
  return token.length > 0 ? text.split(token).join('[redacted]') : text;
}
