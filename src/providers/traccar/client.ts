/**
 * Traccar REST: GET /api/devices (the devices the token's user can see), following Traccar's api/resource
 * DeviceResource as described in reference/provider-wire-formats.md §3a, and the same request as a probe of the
 * token (api/security/SecurityRequestFilter, api/ResourceErrorHandler). A client only: no mapping. Every failure
 * is a ProviderError of the closed set, so the stream runtime picks its retry by class.
 */
import { ProviderError, isProviderError, type ProviderErrorClass } from '../provider-error.ts';
import { providerFetch, statusError } from '../provider-http.ts';
import { traccarApiUrl } from './urls.ts';

export interface DevicesRequest {
  baseUrl: string;
  token: string;
  /** The connection's lifetime; aborting it abandons the request. */
  signal: AbortSignal;
  timeoutMs: number;
  /** Default the shared 16 MiB: tens of thousands of devices. */
  maxBodyBytes?: number;
}

const what = 'Traccar GET /api/devices';

/** The device list as Traccar sent it (entries unchecked: the caller keeps the usable ones). */
export async function fetchTraccarDevices(request: DevicesRequest): Promise<unknown[]> {
  const secrets = [request.token];
  const answer = await providerFetch({
    url: traccarApiUrl(request.baseUrl, 'devices'),
    headers: { authorization: `Bearer ${request.token}`, accept: 'application/json' },
    what,
    timeoutMs: request.timeoutMs,
    signal: request.signal,
    maxBodyBytes: request.maxBodyBytes,
    secrets,
  });
  if (!answer.ok) throw statusError(what, answer, secrets);
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    throw new ProviderError('malformed_response', `${what}: answered something that is not JSON`);
  }
  if (!Array.isArray(body)) throw new ProviderError('malformed_response', `${what}: did not answer a list`);
  return body;
}

/** A probe reads at most this much of an error body: enough for the head of Traccar's stack trace. */
const probeBodyBytes = 64 * 1024;

/**
 * What GET /api/devices says of the token, after Traccar refused the websocket upgrade with a 5xx (its socket
 * servlet never answers 401: api/AsyncSocketServlet's creator throws for a token LoginService refuses, which Jetty
 * answers 500, and returns no socket without one, which Jetty answers 503). The REST filter does say 401:
 * - 401/403: the token is refused (expired, revoked, its user disabled or gone): `auth`;
 * - 400 or 5xx whose body (ResourceErrorHandler answers the stack trace) shows the token could not even be read:
 *   `auth` too (see tokenUnreadable);
 * - 429: `rate_limited`; a redirect: `permanent` (the base URL is not the API);
 * - anything else, the server unreachable or too slow included: `transient`, the server really is in trouble.
 * Never throws.
 */
export async function probeTraccarToken(request: Omit<DevicesRequest, 'maxBodyBytes'>): Promise<ProviderErrorClass> {
  let answer;
  try {
    answer = await providerFetch({
      url: traccarApiUrl(request.baseUrl, 'devices'),
      headers: { authorization: `Bearer ${request.token}`, accept: 'application/json' },
      what,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
      maxBodyBytes: probeBodyBytes,
      secrets: [request.token],
    });
  } catch (error) {
    return isProviderError(error) && error.errorClass === 'permanent' ? 'permanent' : 'transient';
  }
  if (answer.status === 401 || answer.status === 403) return 'auth';
  if ((answer.status === 400 || answer.status >= 500) && tokenUnreadable(answer.text)) return 'auth';
  if (answer.status === 429) return 'rate_limited';
  return 'transient';
}

/**
 * A token Traccar cannot decode fails before any user is looked up: CryptoManager.verify throws a
 * GeneralSecurityException (java.security.SignatureException for a signature that is not DER), which
 * SecurityRequestFilter wraps in a WebApplicationException (500, "Caused by: java.security..."), or a runtime
 * exception for a token that is not even the right shape (ResourceErrorHandler: 400, its first Traccar frame in
 * org.traccar.api.signature, under System.arraycopy or not). A database outage also answers 500 from the filter,
 * but caused by a StorageException: not this.
 */
export function tokenUnreadable(body: string): boolean {
  const head = body.slice(0, 16 * 1024);
  if (/^Caused by: java\.security\./m.test(head) || /^java\.security\.\w+/.test(head)) return true;
  const firstTraccarFrame = /^\s+at (?:[\w.-]+\/)?(org\.traccar\.[\w.$]+)/m.exec(head)?.[1];
  return firstTraccarFrame !== undefined && firstTraccarFrame.startsWith('org.traccar.api.signature.');
}

export interface RouteRequest {
  baseUrl: string;
  token: string;
  /** Traccar's numeric device id (not the uniqueId). */
  deviceId: number;
  /** RFC 3339; Traccar reads both ends inclusive (Condition.Between on fixTime). */
  from: string;
  to: string;
  signal: AbortSignal;
  timeoutMs: number;
  maxBodyBytes?: number;
}

const routeWhat = 'Traccar GET /api/reports/route';

/**
 * One device's positions with a fix time in [from, to], oldest first: `GET /api/reports/route?deviceId=&from=&to=`
 * with `Accept: application/json` (traccar/traccar api/resource/ReportResource.getRoute, reports/RouteReportProvider:
 * PositionUtil.getPositionsStream orders by fixTime ascending and stops at the server's `report.maxPositions`,
 * 50,000 by default; dates parsed by api/DateParameterConverterProvider, ISO 8601). A user whose reports are
 * disabled (UserRestrictions.disableReports) is answered 403, which is `auth` like any refusal.
 */
export async function fetchTraccarRoute(request: RouteRequest): Promise<unknown[]> {
  const url = new URL(traccarApiUrl(request.baseUrl, 'reports/route'));
  url.searchParams.set('deviceId', String(request.deviceId));
  url.searchParams.set('from', request.from);
  url.searchParams.set('to', request.to);
  const secrets = [request.token];
  const answer = await providerFetch({
    url,
    headers: { authorization: `Bearer ${request.token}`, accept: 'application/json' },
    what: routeWhat,
    timeoutMs: request.timeoutMs,
    signal: request.signal,
    maxBodyBytes: request.maxBodyBytes,
    secrets,
  });
  if (!answer.ok) throw statusError(routeWhat, answer, secrets);
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    throw new ProviderError('malformed_response', `${routeWhat}: answered something that is not JSON`);
  }
  if (!Array.isArray(body)) throw new ProviderError('malformed_response', `${routeWhat}: did not answer a list`);
  return body;
}
