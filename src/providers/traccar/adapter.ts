/**
 * Traccar for the stream runtime (reference/provider-wire-formats.md §3a; traccar/traccar api/AsyncSocket and
 * AsyncSocketServlet): one websocket per connection at /api/socket, authenticated by the token in the query;
 * the device list over REST when the socket opens, so positions can be named by the device's uniqueId. Traccar's
 * socket refuses a token with a 5xx, never a 401: a 5xx refusal is told apart from an outage by asking
 * GET /api/devices with the same token.
 */
import { ProviderError } from '../provider-error.ts';
import type { StreamAdapter } from '../stream-adapter.ts';
import { traccarContract } from './contract.ts';
import { decodeTraccarFrame } from './decode.ts';
import { learnDevices } from './device-ids.ts';
import { fetchTraccarDevices, probeTraccarToken } from './client.ts';
import { attributeSources, attributeSourcesOf, rememberAttributeSources, traccarOptionsSchema } from './options.ts';
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
      // The runtime hands options parsed by the contract; parsing again costs nothing and types them. Done before
      // the device list, so frames decode with the connection's attributes even if the list cannot be had.
      const parsed = traccarOptionsSchema.safeParse(context.options ?? {});
      if (!parsed.success) throw new ProviderError('permanent', 'Traccar connection options do not fit the contract');
      rememberAttributeSources(session, attributeSources(parsed.data));
      const devices = await fetchTraccarDevices({
        baseUrl: context.baseUrl,
        token: context.credentials.token,
        signal: context.signal,
        timeoutMs: requestTimeoutMs,
      });
      learnDevices(session, devices);
    },
    classifyRefusal(context) {
      return probeTraccarToken({ baseUrl: context.baseUrl, token: context.credentials.token, signal: context.signal, timeoutMs: requestTimeoutMs });
    },
    decode(frame, _socket, session) {
      return decodeTraccarFrame(frame, session, attributeSourcesOf(session));
    },
  };
}

export const traccarStreamAdapter: StreamAdapter<TraccarCredentials> = createTraccarStreamAdapter();
