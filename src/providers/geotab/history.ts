/**
 * Geotab's history path for backfill: `GetFeed` of `StatusData` and `LogRecord` started from a date (MyGeotab SDK
 * guide "Data feed": a GetFeed without `fromVersion` starts at `search.fromDate`; every answer's `toVersion` is the
 * next call's `fromVersion`; a page shorter than `resultsLimit` means the feed is drained for now), through the
 * poll path's client (its session, its GetFeed pacing) and mapping.
 *
 * GetFeed's search honours only `fromDate` (no device and no end date), so the entities are filtered here: the
 * window's devices, observed within the window. A feed read from a date runs on to the present; it is stopped
 * early once a whole page was observed after the window's end, since entities come in version (arrival) order and
 * a page wholly after the window says the window's own data has been passed. Data uploaded much later than it was
 * observed could arrive after that page; the feed it would have come in is the poll path's, which carries on.
 *
 * The position inside a window is `{ "feed": <index>, "version"?: <toVersion> }`. How long a database keeps its
 * data depends on the customer's plan; Geotab documents no figure, so it is the connection's `historyDays` option
 * (365 when unset).
 */
import { z } from 'zod';
import type { HistoryAdapter, HistoryContext, HistoryPage, HistoryQuery } from '../history-adapter.ts';
import { geotabContract, geotabOptionsSchema } from './contract.ts';
import { feedDrained, geotabClientFor, geotabOptionsOf, readingFeeds, requestCounter, sourceMemoryOf, type FeedContext } from './feeds.ts';
import { toUtcTimestamp } from './mapping.ts';
import { realClock, type PacingClock } from './pacing.ts';
import { maxResultsLimit, type GeotabLogin } from './wire.ts';

export const geotabDefaultHistoryDays = 365;

export interface GeotabHistoryOptions {
  resultsLimit?: number;
  timeoutMs?: number;
  /** One window of a backfill; default 24 hours (each window's feeds run on to the present, see above). */
  windowMs?: number;
  /** Pages per feed in one window, a bound on a feed that never drains. */
  maxPagesPerFeed?: number;
  now?: () => number;
  sleep?: PacingClock['sleep'];
}

const positionSchema = z.object({ feed: z.number().int().min(0), version: z.string().min(1).optional() }).strict();
type Position = z.infer<typeof positionSchema>;

const sourcesKey = 'geotab.history.signalSources';

export function createGeotabHistoryAdapter(settings: GeotabHistoryOptions = {}): HistoryAdapter<GeotabLogin> {
  const resultsLimit = Math.max(1, Math.min(Math.floor(settings.resultsLimit ?? 5000), maxResultsLimit));
  const clock: PacingClock = { now: settings.now ?? realClock.now, sleep: settings.sleep ?? realClock.sleep };
  const maxPages = settings.maxPagesPerFeed ?? 200;

  async function* readWindow(context: HistoryContext<GeotabLogin>, query: HistoryQuery): AsyncGenerator<HistoryPage> {
    const client = geotabClientFor(context, { timeoutMs: settings.timeoutMs, clock });
    const counter = requestCounter(client);
    const feedContext: FeedContext = { options: geotabOptionsOf(context.options), sources: sourceMemoryOf(context.session, sourcesKey) };
    const fromMs = Date.parse(query.from);
    const toMs = Date.parse(query.to);
    const wanted = new Set(query.devices);
    const stored = positionSchema.safeParse(query.cursor);
    let position: Position = stored.success && stored.data.feed < readingFeeds.length ? stored.data : { feed: 0 };
    let pages = 0;
    for (;;) {
      const feed = readingFeeds[position.feed]!;
      const answer = await client.getFeed(feed.typeName, {
        fromVersion: position.version,
        fromDate: position.version ? undefined : query.from,
        resultsLimit,
      });
      pages += 1;
      const inWindow = answer.data.filter((entity) => {
        const device = (entity as { device?: { id?: unknown } } | null)?.device?.id;
        return typeof device === 'string' && wanted.has(device);
      });
      const mapped = feed.map(inWindow, feedContext);
      const devices = mapped.devices
        .map((device) => ({ externalDeviceId: device.externalDeviceId, readings: device.readings.filter((r) => within(r.observedAt, fromMs, toMs)) }))
        .filter((device) => device.readings.length > 0);
      const drained = feedDrained(answer, resultsLimit, position.version) || pages >= maxPages;
      const next: Position | undefined =
        !drained && !wholePageAfter(answer.data, toMs)
          ? { feed: position.feed, version: answer.toVersion }
          : position.feed + 1 < readingFeeds.length
            ? { feed: position.feed + 1 }
            : undefined;
      if (next?.feed !== position.feed) pages = 0;
      yield { devices, cursor: next ?? null, final: next === undefined, requests: counter(), skipped: mapped.skipped };
      if (!next) return;
      position = next;
    }
  }

  return {
    contract: geotabContract,
    windowMs: settings.windowMs ?? 24 * 3600_000,
    keepsDays: (options) => {
      const parsed = geotabOptionsSchema.safeParse(options);
      return (parsed.success ? parsed.data.historyDays : undefined) ?? geotabDefaultHistoryDays;
    },
    fetchHistory: readWindow,
  };
}

function within(observedAt: string, fromMs: number, toMs: number): boolean {
  const ms = Date.parse(observedAt);
  return ms >= fromMs && ms <= toMs;
}

/** Whether every entity of a page with any was observed after `toMs`. */
function wholePageAfter(entities: readonly unknown[], toMs: number): boolean {
  if (entities.length === 0) return false;
  return entities.every((entity) => {
    const text = (entity as { dateTime?: unknown } | null)?.dateTime;
    const at = typeof text === 'string' ? toUtcTimestamp(text) : undefined;
    return at !== undefined && Date.parse(at) > toMs;
  });
}

export const geotabHistoryAdapter: HistoryAdapter<GeotabLogin> = createGeotabHistoryAdapter();
