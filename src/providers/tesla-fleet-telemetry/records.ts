/**
 * One Fleet Telemetry record in its JSON form -> a DecodedFrame (teslamotors/fleet-telemetry telemetry/record.go,
 * `transmit_decoded_records: true`; reference/provider-wire-formats.md §3b). The Redis dispatcher publishes these,
 * and Tessie's hosted websocket relays them. Never throws: what is not a record of the expected vehicle is `bad`
 * with a reason, and decoding goes on with the next.
 *
 * Four record types, told apart by their members: vehicle data (`data`), connectivity (`status` and
 * `connectionId`), alerts (`alerts`) and errors (`errors`). Connectivity becomes a `connectivity_state` reading;
 * alerts and errors are recognised and counted, never bad frames.
 */
import { parseTimestamp, type CanonicalReading } from '../../canonical/update.ts';
import { parseObjectFrame } from '../json-values.ts';
import type { DecodedFrame } from '../stream-adapter.ts';
import { connectivityStateOf, mapTelemetryData, type TelemetryMappingOptions } from './mapping.ts';

export type RecordKind = 'V' | 'connectivity' | 'alerts' | 'errors';

/**
 * `vin` is the vehicle the record must be of (the socket's VIN, the channel's VIN): a record of another vehicle
 * there is misrouted, not data. `kind`, when the transport says what the record is (a Redis channel), must match.
 */
export function decodeTelemetryRecord(
  text: string,
  vin: string | undefined,
  options: TelemetryMappingOptions,
  receivedAtMs: number,
  kind?: RecordKind,
): DecodedFrame {
  const read = parseObjectFrame(text);
  if (!read.ok) return read.bad;
  const record = read.object;
  const found = recordKind(record);
  if (!found) return { kind: 'bad', reason: 'not a telemetry record (no data, status, alerts or errors)' };
  if (kind !== undefined && found !== kind) return { kind: 'bad', reason: `a ${found} record where a ${kind} record belongs` };
  // Connectivity and alert records name their VIN; Tessie may leave it out of the ones it adds, as the socket says it.
  const recordVin = record.vin ?? record.Vin;
  if (recordVin !== undefined && recordVin !== '' && !usableVin(recordVin)) return { kind: 'bad', reason: 'record has no usable vin' };
  const named = typeof recordVin === 'string' && recordVin !== '' ? recordVin : vin;
  if (named === undefined) return { kind: 'bad', reason: 'record has no usable vin' };
  if (vin !== undefined && named !== vin) return { kind: 'bad', reason: 'record of another vehicle than the socket or channel' };

  switch (found) {
    case 'V': {
      if (!usableVin(record.vin)) return { kind: 'bad', reason: 'record has no usable vin' };
      const observedAt = utcTimestamp(record.createdAt);
      if (observedAt === undefined) return { kind: 'bad', reason: 'record has no valid createdAt' };
      const mapped = mapTelemetryData(record.data as unknown[], observedAt, options);
      const devices = mapped.readings.length > 0 ? [{ externalDeviceId: named, readings: mapped.readings }] : [];
      const notes = mapped.invalid > 0 ? { invalidValues: mapped.invalid } : undefined;
      return { kind: 'readings', devices, ...(record.isResend === true ? { resend: true } : {}), ...(notes ? { notes } : {}) };
    }
    case 'connectivity': {
      const reading = connectivityReading(record.status ?? record.Status, record.createdAt ?? record.CreatedAt, receivedAtMs);
      return { kind: 'readings', devices: reading ? [{ externalDeviceId: named, readings: [reading] }] : [] };
    }
    case 'alerts': {
      const alerts = (record.alerts as unknown[]).length;
      return alerts > 0 ? { kind: 'readings', devices: [], notes: { alerts } } : { kind: 'readings', devices: [] };
    }
    case 'errors': {
      const errors = (record.errors as unknown[]).length;
      return errors > 0 ? { kind: 'readings', devices: [], notes: { errors } } : { kind: 'readings', devices: [] };
    }
  }
}

function recordKind(record: Record<string, unknown>): RecordKind | undefined {
  if (Array.isArray(record.data)) return 'V';
  if (Array.isArray(record.alerts)) return 'alerts';
  if (Array.isArray(record.errors)) return 'errors';
  const status = record.status ?? record.Status;
  if (typeof status === 'string' && ('connectionId' in record || 'ConnectionId' in record)) return 'connectivity';
  return undefined;
}

/**
 * A `connectivity_state` reading of a connectivity event, observed when the server saw the change. A missing
 * timestamp, or the Unix epoch a Go zero Timestamp formats to, falls back to the arrival time.
 */
export function connectivityReading(status: unknown, createdAt: unknown, receivedAtMs: number): CanonicalReading | undefined {
  const state = connectivityStateOf(status);
  if (!state) return undefined;
  const ms = typeof createdAt === 'string' ? parseTimestamp(createdAt) : undefined;
  const observedAt = new Date(ms !== undefined && ms > 0 ? ms : receivedAtMs).toISOString();
  return { signal: 'connectivity_state', value: state, observedAt };
}

/** protojson writes Timestamps in UTC with `Z` and 0, 3, 6 or 9 fractional digits; kept to milliseconds. */
function utcTimestamp(text: unknown): string | undefined {
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(text)) return undefined;
  const ms = parseTimestamp(text);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

export function usableVin(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9]{1,64}$/.test(value);
}
