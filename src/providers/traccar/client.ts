/**
 * Traccar REST: GET /api/devices (the devices the token's user can see), following Traccar's api/resource
 * DeviceResource as described in reference/provider-wire-formats.md §3a. A client only: no mapping. Every
 * failure is a ProviderError of the closed set, so the stream runtime picks its retry by class.
 */
import { classifyHttpStatus, parseRetryAfter, ProviderError } from '../provider-error.ts';
import { traccarApiUrl } from './urls.ts';

export interface DevicesRequest {
  baseUrl: string;
  token: string;
  /** The connection's lifetime; aborting it abandons the request. */
  signal: AbortSignal;
  timeoutMs: number;
}

/** The device list as Traccar sent it (entries unchecked: the caller keeps the usable ones). */
export async function fetchTraccarDevices(request: DevicesRequest): Promise<unknown[]> {
  const url = traccarApiUrl(request.baseUrl, 'devices');
  const signal = AbortSignal.any([request.signal, AbortSignal.timeout(request.timeoutMs)]);
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${request.token}`, accept: 'application/json' }, signal });
    text = await response.text();
  } catch (error) {
    // The message names the failure kind only: fetch errors can echo the URL, and nothing here may carry a token.
    throw new ProviderError('transient', `Traccar /api/devices: ${failureKind(error)}`);
  }
  if (!response.ok) {
    const retryAfterMs = response.status === 429 ? parseRetryAfter(response.headers.get('retry-after')) : undefined;
    throw new ProviderError(classifyHttpStatus(response.status), `Traccar /api/devices answered ${response.status}`, retryAfterMs);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProviderError('malformed_response', 'Traccar /api/devices answered something that is not JSON');
  }
  if (!Array.isArray(body)) throw new ProviderError('malformed_response', 'Traccar /api/devices did not answer a list');
  return body;
}

function failureKind(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return error.name === 'TimeoutError' ? 'timed out' : 'aborted';
  }
  return 'network error';
}
