/**
 * Which fleet-telemetry dispatcher a connection's base URL names, and where its records are: the MQTT topic base
 * (datastore/mqtt/README.md, `topic_base`) or the Redis namespace (the server's top-level `namespace`, which
 * datastore/redis/redis.go puts in front of every channel). Pure.
 */
import { ProviderError } from '../provider-error.ts';

export type Dispatcher =
  | { broker: 'mqtt'; brokerUrl: string; topicBase: string }
  | { broker: 'redis'; brokerUrl: string; namespace: string };

const brokers: Record<string, 'mqtt' | 'redis'> = { 'mqtt:': 'mqtt', 'mqtts:': 'mqtt', 'redis:': 'redis', 'rediss:': 'redis' };

let memo: { baseUrl: string; dispatcher: Dispatcher } | undefined;

/** Throws a `permanent` ProviderError for a base URL that names no dispatcher Fleetwire reads. */
export function dispatcherOf(baseUrl: string): Dispatcher {
  if (memo?.baseUrl === baseUrl) return memo.dispatcher;
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ProviderError('permanent', 'Tesla Fleet Telemetry base URL is not a URL');
  }
  const broker = brokers[url.protocol];
  if (!broker) throw new ProviderError('permanent', `Tesla Fleet Telemetry base URL must be mqtt(s):// or redis(s)://, not ${url.protocol}`);
  if (url.username || url.password) throw new ProviderError('permanent', 'Tesla Fleet Telemetry base URL must not carry credentials: put them in the credentials');
  if (!url.hostname) throw new ProviderError('permanent', 'Tesla Fleet Telemetry base URL names no broker host');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname.replace(/^\/+/, '').replace(/\/+$/, ''));
  } catch {
    throw new ProviderError('permanent', 'Tesla Fleet Telemetry base URL has a malformed path');
  }
  const brokerUrl = `${url.protocol}//${url.host}`;
  let dispatcher: Dispatcher;
  if (broker === 'mqtt') {
    if (path === '') throw new ProviderError('permanent', 'an MQTT base URL needs the topic base as its path: mqtt://host:port/<topic_base>');
    if (path.includes('+') || path.includes('#')) throw new ProviderError('permanent', 'the MQTT topic base must not contain + or #');
    dispatcher = { broker, brokerUrl, topicBase: path };
  } else {
    if (path === '' || path.includes('/')) throw new ProviderError('permanent', 'a Redis base URL needs the namespace as its path: redis://host:port/<namespace>');
    dispatcher = { broker, brokerUrl, namespace: path };
  }
  memo = { baseUrl, dispatcher };
  return dispatcher;
}
