/**
 * The JetStream stream events are stored in (JetStream's stream configuration, docs.nats.io "Streams"): made when
 * missing, with file storage, limits retention and a duplicate window for `Nats-Msg-Id`; an existing stream is the
 * operator's and keeps its configuration, but it must take every subject the publisher sends to.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { eventTypes } from './catalogue.ts';

export interface EventStreamSettings {
  name: string;
  subjectPrefix: string;
  /** For a stream made here: how long JetStream remembers a message id. */
  duplicateWindowMs: number;
  /** For a stream made here: how long a message is kept. */
  maxAgeMs: number;
  timeoutMs: number;
}

/** The stream exists with subjects that take `subjects`, but not those the publisher sends: an operator must act. */
export class EventStreamMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventStreamMismatch';
  }
}

/** The subject an event is published to: `<prefix>.<workspace id>.<event type>` (the type spans several tokens). */
export const eventSubject = (prefix: string, workspaceId: string, type: string) => `${prefix}.${workspaceId}.${type}`;

/** Whether every subject `pattern` matches is matched by `filter` too (NATS wildcards: `*` one token, `>` the rest). */
export function subjectCovers(filter: string, pattern: string): boolean {
  const f = filter.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return i < p.length;
    if (i >= p.length || p[i] === '>') return false;
    if (f[i] !== '*' && f[i] !== p[i]) return false;
  }
  return f.length === p.length;
}

/** Makes the stream when it is missing; answers whether it did, and its duplicate window (ms). */
export async function ensureEventStream(nc: NatsConnection, settings: EventStreamSettings): Promise<{ created: boolean; duplicateWindowMs: number }> {
  const jsm = await jetstreamManager(nc, { timeout: settings.timeoutMs });
  const check = (config: StreamConfig) => {
    const wanted = eventTypes.map((type) => eventSubject(settings.subjectPrefix, '*', type));
    const subjects = config.subjects ?? [];
    const missing = wanted.filter((w) => !subjects.some((s) => subjectCovers(s, w)));
    if (missing.length > 0) {
      throw new EventStreamMismatch(
        `the JetStream stream ${settings.name} exists, but its subjects (${subjects.join(', ') || 'none'}) do not take ${settings.subjectPrefix}.>: ` +
          `add ${settings.subjectPrefix}.> to them, or name another stream (FLEETWIRE_NATS_STREAM)`,
      );
    }
    return { duplicateWindowMs: Math.round(config.duplicate_window / 1e6) };
  };
  const existing = async () => {
    try {
      return check((await jsm.streams.info(settings.name)).config);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
      throw error;
    }
  };
  const found = await existing();
  if (found) return { created: false, ...found };
  try {
    const made = await jsm.streams.add({
      name: settings.name,
      subjects: [`${settings.subjectPrefix}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(settings.duplicateWindowMs),
      max_age: nanos(settings.maxAgeMs),
    });
    return { created: true, ...check(made.config) };
  } catch (error) {
    // Another core process made it a moment ago (with this configuration or an operator's).
    const raced = await existing();
    if (raced) return { created: false, ...raced };
    throw error;
  }
}
