/**
 * Tessie for the stream runtime (developer.tessie.com/reference/access-tesla-fleet-telemetry): one socket per
 * vehicle at `<base>/<VIN>` with a Bearer token, carrying Tesla Fleet Telemetry records in their JSON form (the
 * records of teslamotors/fleet-telemetry, read by ../tesla-fleet-telemetry/records.ts): vehicle data, and the
 * connectivity, alerts and errors messages Tessie documents besides. No prepare step: the socket names its VIN.
 */
import { ProviderError } from '../provider-error.ts';
import type { SocketPlan, StreamAdapter } from '../stream-adapter.ts';
import { decodeTelemetryRecord } from '../tesla-fleet-telemetry/records.ts';
import type { SocField } from '../tesla-fleet-telemetry/wire.ts';
import { tessieContract, type TessieCredentials } from './contract.ts';

export const tessieStreamAdapter: StreamAdapter<TessieCredentials> = {
  contract: tessieContract,
  plan(context) {
    const base = socketBase(context.baseUrl);
    const vins = [...new Set(context.boundDevices.map((vin) => vin.trim()).filter((vin) => vin.length > 0))];
    return vins.map(
      (vin): SocketPlan => ({
        // The key is the VIN: decode checks records against it.
        key: vin,
        device: vin,
        url: `${base}/${encodeURIComponent(vin)}`,
        headers: { authorization: `Bearer ${context.credentials.accessToken}` },
      }),
    );
  },
  decode(frame, socket, _session, receivedAtMs, context) {
    return decodeTelemetryRecord(frame, socket.key, { socField: socFieldOf(context?.options) }, receivedAtMs);
  },
};

/** The connection's choice, parsed by the contract; the contract's default when decoding runs without one. */
function socFieldOf(options: Record<string, unknown> | undefined): SocField {
  return options?.socField === 'Soc' ? 'Soc' : 'BatteryLevel';
}

/** ws(s)://host[/prefix] from the base URL: http -> ws, https -> wss; query and fragment dropped. */
function socketBase(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ProviderError('permanent', 'Tessie base URL is not a URL');
  }
  const protocols: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };
  const protocol = protocols[url.protocol];
  if (!protocol) throw new ProviderError('permanent', `Tessie base URL must be http(s) or ws(s), not ${url.protocol}`);
  return `${protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}
