/**
 * Traccar for the stream runtime (reference/provider-wire-formats.md §3a; Traccar api/AsyncSocket and
 * AsyncSocketServlet): one websocket per connection at /api/socket, authenticated by the token in the query;
 * the device list over REST when the socket opens, so positions can be named by the device's uniqueId.
 */
import type { StreamAdapter } from '../stream-adapter.ts';
import { traccarContract } from './contract.ts';
import { decodeTraccarFrame } from './decode.ts';
import { learnDevices } from './device-ids.ts';
import { fetchTraccarDevices } from './client.ts';
import { traccarSocketUrl } from './urls.ts';

export type TraccarCredentials = { token: string };

export interface TraccarStreamAdapterOptions {
  /** How long GET /api/devices may take before it counts as a transient failure. Default 10 s. */
  requestTimeoutMs?: number;
}

export function createTraccarStreamAdapter(options: TraccarStreamAdapterOptions = {}): StreamAdapter<TraccarCredentials> {
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  return {
    contract: traccarContract,
    plan(context) {
      // The key names the socket, never the token: it shows up in status and logs.
      return [{ key: 'api/socket', url: traccarSocketUrl(context.baseUrl, context.credentials.token), headers: {} }];
    },
    async prepare(context, _socket, session) {
      const devices = await fetchTraccarDevices({
        baseUrl: context.baseUrl,
        token: context.credentials.token,
        signal: context.signal,
        timeoutMs: requestTimeoutMs,
      });
      learnDevices(session, devices);
    },
    decode(frame, _socket, session) {
      return decodeTraccarFrame(frame, session);
    },
  };
}

export const traccarStreamAdapter: StreamAdapter<TraccarCredentials> = createTraccarStreamAdapter();
