/**
 * The Geotab poll adapter for core's poll runner. Each poll follows the StatusData, LogRecord and ChargeEvent feeds
 * from the stored versions (MyGeotab SDK guide "Data feed": call again while pages come back full, paced to the
 * limit the server declares, one GetFeed per second per entity type for MyGeotab; pacing.ts), then reads
 * DeviceStatusInfo once for headings, which no feed carries.
 *
 * Cursor: `{"statusData": "<toVersion>", "logRecord": "<toVersion>", "chargeEvent": "<toVersion>"}`, one version
 * per feed (each feed's versions are its own). A feed without a version starts at
 * `search.fromDate` = now minus one hour, so a new connection does not pull the database's whole history. Every
 * page carries the whole cursor, with the version of the feed it came from advanced: the runner commits pages in
 * order, so a failure between pages re-reads from the last committed one.
 *
 * Devices are not filtered by the bound ones: an unbound device must reach ingest to show up as unknown_device.
 *
 * ChargeEvent pages carry charging sessions (`chargingSessions` on the device), no readings. A database that
 * refuses the ChargeEvent feed (an older server, a permanent error) leaves a note on the poll and the other feeds
 * go on: charging sessions are an extra, not a reason to stop reading the vehicles.
 */
import { z } from 'zod';
import type { PollAdapter, PollContext, PollPage } from '../poll-adapter.ts';
import { ProviderError } from '../provider-error.ts';
import { geotabContract } from './contract.ts';
import {
  chargeEventFeed,
  feedDrained,
  geotabClientFor,
  geotabOptionsOf,
  readingFeeds,
  requestCounter,
  sourceMemoryOf,
  type FeedContext,
  type GeotabFeed,
} from './feeds.ts';
import { mapDeviceStatusInfos, type GeotabDeviceReadings } from './mapping.ts';
import { realClock, type PacingClock } from './pacing.ts';
import { maxResultsLimit, type GeotabLogin } from './wire.ts';

export interface GeotabCursor {
  statusData?: string;
  logRecord?: string;
  chargeEvent?: string;
}

/** A page as this adapter yields it: the cursor in its Geotab shape, and the skipped count always set. */
export interface GeotabPollPage extends PollPage {
  devices: GeotabDeviceReadings[];
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
  /** What GetFeed pacing and the Authenticate limit wait on; default the real clock (tests pass the simulator's). */
  sleep?: PacingClock['sleep'];
}

const feeds: readonly (GeotabFeed & { key: keyof GeotabCursor })[] = [
  { ...readingFeeds[0]!, key: 'statusData' },
  { ...readingFeeds[1]!, key: 'logRecord' },
  { ...chargeEventFeed, key: 'chargeEvent' },
];

const cursorSchema = z.object({
  statusData: z.string().min(1).optional(),
  logRecord: z.string().min(1).optional(),
  chargeEvent: z.string().min(1).optional(),
});

/** Where the adapter keeps, per connection, the odometer and charging-state source of each device (mapping.ts). */
const sourcesKey = 'geotab.signalSources';

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
  if (parsed.data.chargeEvent !== undefined) cursor.chargeEvent = parsed.data.chargeEvent;
  return cursor;
}

export function createGeotabPollAdapter(options: GeotabPollOptions = {}): PollAdapter<GeotabLogin> {
  const resultsLimit = Math.max(1, Math.min(Math.floor(options.resultsLimit ?? 5000), maxResultsLimit));
  const maxPagesPerFeed = options.maxPagesPerFeed ?? 100;
  const lookbackMs = options.firstPollLookbackMs ?? 3600_000;
  const now = options.now ?? Date.now;
  const clock: PacingClock = { now, sleep: options.sleep ?? realClock.sleep };

  async function* poll(context: PollContext<GeotabLogin>): AsyncGenerator<GeotabPollPage> {
    const client = geotabClientFor(context, { timeoutMs: options.timeoutMs, clock });
    const counter = requestCounter(client);
    const feedContext: FeedContext = { options: geotabOptionsOf(context.options), sources: sourceMemoryOf(context.session, sourcesKey) };
    let cursor = readCursor(context.cursor);
    const fromDate = new Date(now() - lookbackMs).toISOString();

    for (const feed of feeds) {
      for (let page = 0; page < maxPagesPerFeed; page += 1) {
        const fromVersion = cursor[feed.key];
        let answer;
        try {
          answer = await client.getFeed(feed.typeName, { fromVersion, fromDate: fromVersion ? undefined : fromDate, resultsLimit });
        } catch (error) {
          if (feed.typeName !== 'ChargeEvent' || !(error instanceof ProviderError) || error.errorClass !== 'permanent') throw error;
          yield { devices: [], cursor, requests: counter(), skipped: 0, notes: [`Geotab ChargeEvent feed unavailable, charging sessions skipped: ${error.message}`] };
          break;
        }
        const mapped = feed.map(answer.data, feedContext);
        cursor = { ...cursor, [feed.key]: answer.toVersion };
        yield { devices: mapped.devices, cursor, requests: counter(), skipped: mapped.skipped };
        if (feedDrained(answer, resultsLimit, fromVersion)) break;
      }
    }

    const statuses = mapDeviceStatusInfos(await client.get('DeviceStatusInfo'));
    yield { devices: statuses.devices, cursor, requests: counter(), skipped: statuses.skipped };
  }

  return { contract: geotabContract, poll };
}

export const geotabPollAdapter: PollAdapter<GeotabLogin> = createGeotabPollAdapter();
