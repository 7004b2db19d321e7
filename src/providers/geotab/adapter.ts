/**
 * The Geotab poll adapter for core's poll runner. Each poll follows the StatusData and the LogRecord feeds from
 * the stored versions (MyGeotab SDK guide "Data feed": call again at once while pages come back full), then reads
 * DeviceStatusInfo once for headings, which no feed carries.
 *
 * Cursor: `{"statusData": "<toVersion>", "logRecord": "<toVersion>"}`. A feed without a version starts at
 * `search.fromDate` = now minus one hour, so a new connection does not pull the database's whole history. Every
 * page carries the whole cursor, with the version of the feed it came from advanced: the runner commits pages in
 * order, so a failure between pages re-reads from the last committed one.
 *
 * Devices are not filtered by the bound ones: an unbound device must reach ingest to show up as unknown_device.
 */
import { z } from 'zod';
import type { PollAdapter, PollContext, PollPage } from '../poll-adapter.ts';
import { createGeotabClient, defaultTimeoutMs, type GeotabClient } from './client.ts';
import { geotabContract } from './contract.ts';
import { mapDeviceStatusInfos, mapLogRecords, mapStatusData, type MappedEntities } from './mapping.ts';
import { maxResultsLimit, type FeedTypeName, type GeotabLogin } from './wire.ts';

export interface GeotabCursor {
  statusData?: string;
  logRecord?: string;
}

/** A page as this adapter yields it: the cursor in its Geotab shape, and the skipped count always set. */
export interface GeotabPollPage extends PollPage {
  cursor: GeotabCursor;
  skipped: number;
}

export interface GeotabPollOptions {
  /** Entities asked per GetFeed call (the server clamps above 50,000). */
  resultsLimit?: number;
  /** Bounds one poll; the next poll continues from the cursor. */
  maxPagesPerFeed?: number;
  /** Per request. */
  timeoutMs?: number;
  /** How far back a feed without a version starts. */
  firstPollLookbackMs?: number;
  now?: () => number;
}

const feeds: readonly { typeName: FeedTypeName; key: keyof GeotabCursor; map: (entities: readonly unknown[]) => MappedEntities }[] = [
  { typeName: 'StatusData', key: 'statusData', map: mapStatusData },
  { typeName: 'LogRecord', key: 'logRecord', map: mapLogRecords },
];

const cursorSchema = z.object({ statusData: z.string().min(1).optional(), logRecord: z.string().min(1).optional() });

/**
 * The stored cursor, or an empty one. A cursor of another shape (an older format, a hand edit) restarts the
 * feeds an hour back instead of failing the connection forever; ingest absorbs the duplicates.
 */
export function readCursor(stored: unknown): GeotabCursor {
  const parsed = cursorSchema.safeParse(stored);
  if (!parsed.success) return {};
  const cursor: GeotabCursor = {};
  if (parsed.data.statusData !== undefined) cursor.statusData = parsed.data.statusData;
  if (parsed.data.logRecord !== undefined) cursor.logRecord = parsed.data.logRecord;
  return cursor;
}

export function createGeotabPollAdapter(options: GeotabPollOptions = {}): PollAdapter<GeotabLogin> {
  const resultsLimit = Math.max(1, Math.min(Math.floor(options.resultsLimit ?? 5000), maxResultsLimit));
  const maxPagesPerFeed = options.maxPagesPerFeed ?? 100;
  const lookbackMs = options.firstPollLookbackMs ?? 3600_000;
  const now = options.now ?? Date.now;

  async function* poll(context: PollContext<GeotabLogin>): AsyncGenerator<GeotabPollPage> {
    const client = createGeotabClient({
      baseUrl: context.baseUrl,
      login: context.credentials,
      session: context.session,
      signal: context.signal,
      timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
    });
    const counter = requestCounter(client);
    let cursor = readCursor(context.cursor);
    const fromDate = new Date(now() - lookbackMs).toISOString();

    for (const feed of feeds) {
      for (let page = 0; page < maxPagesPerFeed; page += 1) {
        const fromVersion = cursor[feed.key];
        const answer = await client.getFeed(feed.typeName, { fromVersion, fromDate: fromVersion ? undefined : fromDate, resultsLimit });
        const mapped = feed.map(answer.data);
        cursor = { ...cursor, [feed.key]: answer.toVersion };
        yield { devices: mapped.devices, cursor, requests: counter(), skipped: mapped.skipped };
        // A short page means the feed is drained for now; an unmoved version would loop on the same page.
        if (answer.data.length < resultsLimit || answer.toVersion === fromVersion) break;
      }
    }

    const statuses = mapDeviceStatusInfos(await client.get('DeviceStatusInfo'));
    yield { devices: statuses.devices, cursor, requests: counter(), skipped: statuses.skipped };
  }

  return { contract: geotabContract, poll };
}

/** Requests since the previous page. */
function requestCounter(client: GeotabClient): () => number {
  let counted = 0;
  return () => {
    const delta = client.requests - counted;
    counted = client.requests;
    return delta;
  };
}

export const geotabPollAdapter: PollAdapter<GeotabLogin> = createGeotabPollAdapter();
