/**
 * What the Geotab poll adapter and the history adapter share: a client over a connection's context, the feeds that
 * carry readings and how each is mapped, the per-connection memory of each device's signal sources, the requests
 * counted per page, and when a feed is drained (MyGeotab SDK guide "Data feed": a page shorter than `resultsLimit`
 * means the feed is drained for now; an unmoved `toVersion` would read the same page again).
 */
import { ProviderError } from '../provider-error.ts';
import { createGeotabClient, defaultTimeoutMs, type GeotabClient } from './client.ts';
import { geotabOptionsSchema, type GeotabOptions } from './contract.ts';
import { mapChargeEvents, mapLogRecords, mapStatusData, type MappedEntities, type SourceMemory } from './mapping.ts';
import type { PacingClock } from './pacing.ts';
import type { FeedTypeName, GeotabLogin } from './wire.ts';

/** The part of a poll or history context a Geotab client is made from. */
export interface GeotabContext {
  baseUrl: string;
  credentials: GeotabLogin;
  options: unknown;
  signal: AbortSignal;
  session: Map<string, unknown>;
}

/** The connection's options, or a permanent error naming what does not fit. */
export function geotabOptionsOf(options: unknown): GeotabOptions {
  const parsed = geotabOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) throw new ProviderError('permanent', "Geotab: the connection's options do not fit (batteryPowerChargingSign is 'negative' or 'positive'; historyDays a whole number from 1 to 3650)");
  return parsed.data;
}

export function geotabClientFor(context: GeotabContext, settings: { timeoutMs?: number | undefined; clock: PacingClock }): GeotabClient {
  return createGeotabClient({
    baseUrl: context.baseUrl,
    login: context.credentials,
    session: context.session,
    signal: context.signal,
    timeoutMs: settings.timeoutMs ?? defaultTimeoutMs,
    clock: settings.clock,
  });
}

export interface FeedContext {
  options: GeotabOptions;
  sources: SourceMemory;
}

export interface GeotabFeed {
  typeName: FeedTypeName;
  map(entities: readonly unknown[], context: FeedContext): MappedEntities;
}

/** The feeds whose entities are readings, in the order they are read. */
export const readingFeeds: readonly GeotabFeed[] = [
  {
    typeName: 'StatusData',
    map: (entities, { options, sources }) => mapStatusData(entities, { batteryPowerChargingSign: options.batteryPowerChargingSign, sources }),
  },
  { typeName: 'LogRecord', map: mapLogRecords },
];

/** Charging sessions, no readings: the poll path reads it after the reading feeds. */
export const chargeEventFeed: GeotabFeed = { typeName: 'ChargeEvent', map: mapChargeEvents };

/**
 * The memory under `key` of the connection's session: which source each device's odometer and charging state last
 * came from (mapping.ts). The poll path and backfill keep one each, so reading old data never changes what the
 * live feed remembers.
 */
export function sourceMemoryOf(session: Map<string, unknown>, key: string): SourceMemory {
  const held = session.get(key);
  if (held instanceof Map) return held as SourceMemory;
  const fresh: SourceMemory = new Map();
  session.set(key, fresh);
  return fresh;
}

/** Requests since the previous call: what each page reports. */
export function requestCounter(client: GeotabClient): () => number {
  let counted = 0;
  return () => {
    const delta = client.requests - counted;
    counted = client.requests;
    return delta;
  };
}

/** Whether a GetFeed answer ends its feed for now. */
export function feedDrained(answer: { data: readonly unknown[]; toVersion: string }, resultsLimit: number, fromVersion: string | undefined): boolean {
  return answer.data.length < resultsLimit || answer.toVersion === fromVersion;
}
