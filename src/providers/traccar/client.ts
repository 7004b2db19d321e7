/**
 * Traccar REST: GET /api/devices (the devices the token's user can see), following Traccar's api/resource
 * DeviceResource as described in reference/provider-wire-formats.md §3a. A client only: no mapping. Every
 * failure is a ProviderError of the closed set, so the stream runtime picks its retry by class.
 */
import { ProviderError } from '../provider-error.ts';
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
