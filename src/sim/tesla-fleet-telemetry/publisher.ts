/**
 * A partner's fleet-telemetry server as its MQTT dispatcher publishes (teslamotors/fleet-telemetry
 * datastore/mqtt/mqtt_payload.go, README.md): for each vehicle and tick, one message per field the fleet model
 * sampled on `<topic_base>/<VIN>/v/<Field>` with the field's value JSON-encoded (strings, as vehicles send without
 * `prefer_typed`; a location as `{latitude, longitude}`; enums by name), and a connectivity message on
 * `<topic_base>/<VIN>/connectivity` when the publisher starts, at QoS 1. It needs a broker: the demo runs it only
 * when one answers on 127.0.0.1:1883. Nothing of production imports it.
 */
import { randomUUID } from 'node:crypto';
import { connect as connectSocket } from 'node:net';
import mqtt from 'mqtt';
import type { SignalName } from '../../canonical/signals.ts';
import type { MqttConnectivity, MqttMetricValue, TelemetryValue } from '../../providers/tesla-fleet-telemetry/wire.ts';
import type { FleetModel } from '../fleet-model.ts';
import { simulatedRecord } from '../tessie/simulator-records.ts';

export interface FleetTelemetryPublisherOptions {
  /** `mqtt://host:port`. */
  brokerUrl: string;
  topicBase: string;
  fleet: FleetModel;
  /** The clock the fleet advances on. Default Date.now. */
  now?: () => number;
  /** How often the fleet advances and what it sampled is published. Default 1 s. */
  tickMs?: number;
}

export interface RunningFleetTelemetryPublisher {
  readonly provider: 'tesla-fleet-telemetry';
  /** The base URL a `tesla-fleet-telemetry` connection uses for this publisher. */
  readonly url: string;
  /** Messages published so far. */
  readonly published: { messages: number };
  stop(): Promise<void>;
}

/** True when something accepts a TCP connection at host:port within `timeoutMs` (the demo's broker probe). */
export function brokerAnswers(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectSocket({ host, port });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A datum's value as the MQTT dispatcher encodes it (getDatumValue). */
function mqttValue(value: TelemetryValue): MqttMetricValue {
  if ('stringValue' in value) return value.stringValue;
  if ('locationValue' in value) return { latitude: value.locationValue.latitude, longitude: value.locationValue.longitude };
  if ('detailedChargeStateValue' in value) return value.detailedChargeStateValue;
  if ('shiftStateValue' in value) return value.shiftStateValue;
  if ('invalid' in value) return null;
  if ('booleanValue' in value) return value.booleanValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return value.intValue;
  if ('longValue' in value) return Number(value.longValue);
  if ('floatValue' in value) return Number(value.floatValue);
  return Number(value.doubleValue);
}

export async function startFleetTelemetryPublisher(options: FleetTelemetryPublisherOptions): Promise<RunningFleetTelemetryPublisher> {
  const now = options.now ?? Date.now;
  const { fleet, topicBase } = options;
  const client = await mqtt.connectAsync(options.brokerUrl, { clientId: `fleetwire-sim-${randomUUID()}`, clean: true, reconnectPeriod: 1000 });
  const published = { messages: 0 };
  const publish = (topic: string, payload: unknown) => {
    published.messages += 1;
    client.publish(`${topicBase}/${topic}`, JSON.stringify(payload), { qos: 1 }, () => undefined);
  };

  fleet.advanceTo(now());
  let cursor = fleet.endSeq;
  const known = new Map<number, Map<SignalName, unknown>>(fleet.vehicles.map((_, index) => [index, new Map()]));
  for (const sample of fleet.latest()) known.get(sample.vehicle)!.set(sample.signal, sample.value);
  // Each vehicle's link comes up as the publisher starts (Go's time.RFC3339: to the second).
  const createdAt = new Date(Math.floor(now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  for (const vehicle of fleet.vehicles) {
    const connectivity: MqttConnectivity = { ConnectionId: randomUUID(), Status: 'CONNECTED', CreatedAt: createdAt };
    publish(`${vehicle.vin}/connectivity`, connectivity);
  }

  const tick = () => {
    fleet.advanceTo(now());
    const samples = fleet.samplesFrom(cursor);
    cursor = fleet.endSeq;
    const sampled = new Map<number, Map<SignalName, unknown>>();
    for (const sample of samples) {
      const mine = sampled.get(sample.vehicle) ?? new Map<SignalName, unknown>();
      mine.set(sample.signal, sample.value);
      sampled.set(sample.vehicle, mine);
      known.get(sample.vehicle)!.set(sample.signal, sample.value);
    }
    for (const [index, signals] of sampled) {
      const vin = fleet.vehicles[index]!.vin;
      const record = simulatedRecord(vin, { sampled: signals, known: known.get(index)! }, now());
      for (const datum of record?.data ?? []) publish(`${vin}/v/${datum.key}`, mqttValue(datum.value));
    }
  };
  const timer = setInterval(tick, options.tickMs ?? 1000);
  timer.unref();

  const url = new URL(options.brokerUrl);
  return {
    provider: 'tesla-fleet-telemetry',
    url: `${url.protocol}//${url.host}/${topicBase}`,
    published,
    stop: async () => {
      clearInterval(timer);
      await client.endAsync();
    },
  };
}
