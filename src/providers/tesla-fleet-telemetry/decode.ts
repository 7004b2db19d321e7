/**
 * One dispatcher message -> a DecodedFrame. Pure; never throws: what cannot be read is `bad` with a reason.
 *
 * MQTT (datastore/mqtt/mqtt_payload.go): the topic says the VIN and what the message is,
 * `<topic_base>/<VIN>/v/<Field>` (one field, its JSON-encoded value, no time: observed at its arrival),
 * `<topic_base>/<VIN>/connectivity`, `<topic_base>/<VIN>/alerts/<name>/current|history`,
 * `<topic_base>/<VIN>/errors/<name>`.
 * Redis (datastore/redis/redis.go vinChannel): `<namespace>_<record type>_{<VIN>}`, the payload the record's JSON
 * form (records.ts).
 */
import { isRecord } from '../json-values.ts';
import type { DecodedFrame } from '../stream-adapter.ts';
import { isTelemetryField, mapTelemetryData, mqttValueAsDatum, type TelemetryMappingOptions } from './mapping.ts';
import { connectivityReading, decodeTelemetryRecord, usableVin, type RecordKind } from './records.ts';

const nothing: DecodedFrame = { kind: 'readings', devices: [] };

export function decodeMqttMessage(
  message: { topic: string; payload: string; retained?: boolean },
  topicBase: string,
  options: TelemetryMappingOptions,
  receivedAtMs: number,
): DecodedFrame {
  const prefix = `${topicBase}/`;
  if (!message.topic.startsWith(prefix)) return { kind: 'bad', reason: 'topic outside the topic base' };
  const [vin, kind, name, leaf, ...more] = message.topic.slice(prefix.length).split('/');
  if (!usableVin(vin)) return { kind: 'bad', reason: 'topic names no usable VIN' };
  let payload: unknown;
  try {
    payload = JSON.parse(message.payload);
  } catch {
    return { kind: 'bad', reason: 'payload is not JSON' };
  }

  if (kind === 'v' && name !== undefined && leaf === undefined) {
    if (!isTelemetryField(name)) return nothing;
    // A retained copy was published at some earlier moment nobody can tell: stamping it with its arrival would be false.
    if (message.retained === true) return nothing;
    const datum = mqttValueAsDatum(payload);
    if (!datum) return { kind: 'bad', reason: `value of ${name} is neither a number, a string nor a location` };
    const mapped = mapTelemetryData([{ key: name, value: datum }], new Date(receivedAtMs).toISOString(), options);
    const devices = mapped.readings.length > 0 ? [{ externalDeviceId: vin, readings: mapped.readings }] : [];
    return mapped.invalid > 0 ? { kind: 'readings', devices, notes: { invalidValues: mapped.invalid } } : { kind: 'readings', devices };
  }
  if (kind === 'connectivity' && name === undefined) {
    if (!isRecord(payload) || typeof payload.Status !== 'string') return { kind: 'bad', reason: 'connectivity message without a Status' };
    const reading = connectivityReading(payload.Status, payload.CreatedAt, receivedAtMs);
    return { kind: 'readings', devices: reading ? [{ externalDeviceId: vin, readings: [reading] }] : [] };
  }
  if (kind === 'alerts' && name && (leaf === 'current' || leaf === 'history') && more.length === 0) {
    // The history repeats what `current` announced; only the current state counts as one alert.
    return leaf === 'current' ? { kind: 'readings', devices: [], notes: { alerts: 1 } } : nothing;
  }
  if (kind === 'errors' && name && leaf === undefined) return { kind: 'readings', devices: [], notes: { errors: 1 } };
  return { kind: 'bad', reason: 'topic of no kind the MQTT dispatcher publishes' };
}

const redisChannel = /^(V|connectivity|alerts|errors)_\{([^{}]*)\}$/;

export function decodeRedisMessage(
  message: { topic: string; payload: string },
  namespace: string,
  options: TelemetryMappingOptions,
  receivedAtMs: number,
): DecodedFrame {
  const prefix = `${namespace}_`;
  if (!message.topic.startsWith(prefix)) return { kind: 'bad', reason: 'channel outside the namespace' };
  const match = redisChannel.exec(message.topic.slice(prefix.length));
  if (!match || !usableVin(match[2])) return { kind: 'bad', reason: 'channel is not <namespace>_<type>_{<VIN>}' };
  const decoded = decodeTelemetryRecord(message.payload, match[2], options, receivedAtMs, match[1] as RecordKind);
  // Without transmit_decoded_records the server publishes protobuf bytes, which Fleetwire does not read.
  if (decoded.kind === 'bad' && decoded.reason === 'frame is not JSON') return { kind: 'bad', reason: 'payload is not JSON (is transmit_decoded_records on?)' };
  return decoded;
}
