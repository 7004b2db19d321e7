/**
 * Tesla Fleet Telemetry for the stream runtime (reference/provider-wire-formats.md §3b): Fleetwire consumes the
 * decoded JSON records a telemetry server re-publishes over a websocket, one socket per vehicle at
 * `<base>/<VIN>` with a Bearer token (the hosted shape Tessie documents), not the vehicles' own mTLS flatbuffers
 * protocol. No prepare step: records name their VIN.
 */
import { ProviderError } from '../provider-error.ts';
import type { SocketPlan, StreamAdapter } from '../stream-adapter.ts';
import { teslaTelemetryContract } from './contract.ts';
import { decodeTelemetryFrame } from './decode.ts';

export type TeslaTelemetryCredentials = { accessToken: string };

export const teslaTelemetryStreamAdapter: StreamAdapter<TeslaTelemetryCredentials> = {
  contract: teslaTelemetryContract,
  plan(context) {
    const base = socketBase(context.baseUrl);
    const vins = [...new Set(context.boundDevices.map((vin) => vin.trim()).filter((vin) => vin.length > 0))];
    return vins.map(
      (vin): SocketPlan => ({
        // The key is the VIN: decode checks records against it.
        key: vin,
        url: `${base}/${encodeURIComponent(vin)}`,
        headers: { authorization: `Bearer ${context.credentials.accessToken}` },
      }),
    );
  },
  decode(frame, socket) {
    return decodeTelemetryFrame(frame, socket.key);
  },
};

/** ws(s)://host[/prefix] from the base URL: http -> ws, https -> wss; query and fragment dropped. */
function socketBase(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ProviderError('permanent', 'Tesla Fleet Telemetry base URL is not a URL');
  }
  const protocols: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };
  const protocol = protocols[url.protocol];
  if (!protocol) throw new ProviderError('permanent', `Tesla Fleet Telemetry base URL must be http(s) or ws(s), not ${url.protocol}`);
  return `${protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}
