/**
 * One Fleet Telemetry JSON record -> a DecodedFrame (reference/provider-wire-formats.md §3b). Never throws: a
 * frame that is not a record of the socket's vehicle is `bad` with a reason, and decoding goes on with the next.
 */
import { parseTimestamp } from '../../canonical/update.ts';
import { parseObjectFrame } from '../json-values.ts';
import type { DecodedFrame } from '../stream-adapter.ts';
import { mapTelemetryData } from './mapping.ts';

/** `socketVin` is the VIN the socket was opened for: a record of another vehicle there is misrouted, not data. */
export function decodeTelemetryFrame(frame: string, socketVin: string | undefined): DecodedFrame {
  const read = parseObjectFrame(frame);
  if (!read.ok) return read.bad;
  const parsed = read.object;
  if (!Array.isArray(parsed.data)) return { kind: 'bad', reason: 'not a telemetry record (no data list)' };
  const { vin } = parsed;
  if (!usableVin(vin)) return { kind: 'bad', reason: 'record has no usable vin' };
  if (socketVin !== undefined && vin !== socketVin) return { kind: 'bad', reason: 'record of another vehicle than the socket' };
  const observedAt = utcTimestamp(parsed.createdAt);
  if (observedAt === undefined) return { kind: 'bad', reason: 'record has no valid createdAt' };

  const readings = mapTelemetryData(parsed.data, observedAt);
  const devices = readings.length > 0 ? [{ externalDeviceId: vin, readings }] : [];
  return parsed.isResend === true ? { kind: 'readings', devices, resend: true } : { kind: 'readings', devices };
}

/** protojson writes Timestamps in UTC with `Z` and 0, 3, 6 or 9 fractional digits; kept to milliseconds. */
function utcTimestamp(text: unknown): string | undefined {
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(text)) return undefined;
  const ms = parseTimestamp(text);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function usableVin(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9]{1,64}$/.test(value);
}
