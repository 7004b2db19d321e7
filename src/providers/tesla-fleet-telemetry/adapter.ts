/**
 * Tesla Fleet Telemetry for the stream runtime, through the partner server's dispatcher (teslamotors/fleet-telemetry
 * datastore/mqtt, datastore/redis): one broker client per connection, subscribed to every vehicle's messages under
 * the topic base or namespace. Messages of vehicles not bound on the connection are dropped by the runtime.
 *
 * MQTT: QoS 1 with a persistent session (the client id is derived from the connection id), so what the server
 * published at QoS 1 while the stream process was away is delivered when it is back: at least once.
 * Redis: pub/sub, at most once: what is published while no subscriber listens is gone.
 */
import { ProviderError } from '../provider-error.ts';
import type { SubscriptionAdapter, SubscriptionPlan } from '../stream-adapter.ts';
import { teslaFleetTelemetryContract, type TeslaFleetTelemetryCredentials } from './contract.ts';
import { decodeMqttMessage, decodeRedisMessage } from './decode.ts';
import { dispatcherOf } from './dispatcher.ts';
import { redisRecordTypes, type SocField } from './wire.ts';

export const teslaFleetTelemetryAdapter: SubscriptionAdapter<TeslaFleetTelemetryCredentials> = {
  kind: 'subscription',
  contract: teslaFleetTelemetryContract,
  subscription(context): SubscriptionPlan {
    const dispatcher = dispatcherOf(context.baseUrl);
    const { username, password } = context.credentials;
    const auth = { ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }) };
    if (dispatcher.broker === 'mqtt') {
      if (!context.connectionId) throw new ProviderError('permanent', 'an MQTT subscription needs the connection id for its session');
      const base = dispatcher.topicBase;
      return {
        broker: 'mqtt',
        key: `mqtt:${base}`,
        url: dispatcher.brokerUrl,
        ...auth,
        // Stable across restarts and processes: the broker keeps this session's subscriptions and queued messages.
        clientId: `fleetwire-${context.connectionId}`,
        topics: [`${base}/+/v/+`, `${base}/+/connectivity`, `${base}/+/alerts/+/current`, `${base}/+/errors/+`],
        qos: 1,
      };
    }
    const namespace = globEscaped(dispatcher.namespace);
    return {
      broker: 'redis',
      key: `redis:${dispatcher.namespace}`,
      url: dispatcher.brokerUrl,
      ...auth,
      channels: [],
      // `{` and `}` are not special in Redis globs; the namespace's own glob characters are escaped.
      patterns: redisRecordTypes.map((type) => `${namespace}_${type}_{*}`),
    };
  },
  decodeMessage(message, context, receivedAtMs) {
    let dispatcher;
    try {
      dispatcher = dispatcherOf(context.baseUrl);
    } catch (error) {
      return { kind: 'bad', reason: (error as Error).message };
    }
    const options = { socField: socFieldOf(context.options) };
    return dispatcher.broker === 'mqtt'
      ? decodeMqttMessage(message, dispatcher.topicBase, options, receivedAtMs)
      : decodeRedisMessage(message, dispatcher.namespace, options, receivedAtMs);
  },
};

function socFieldOf(options: Record<string, unknown>): SocField {
  return options.socField === 'Soc' ? 'Soc' : 'BatteryLevel';
}

function globEscaped(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
