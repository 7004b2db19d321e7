/**
 * Traccar's history path for backfill: the route report, `GET /api/reports/route?deviceId=&from=&to=`
 * (traccar/traccar api/resource/ReportResource.getRoute; client.ts names the details), one device per request,
 * mapped by the stream path's own position mapping with the connection's attribute sources. Traccar names devices
 * by its numeric id in positions, so the window first learns the uniqueId -> id map from `GET /api/devices`.
 *
 * The server answers at most `report.maxPositions` positions per device and request (50,000 unless configured;
 * the connection's `reportMaxPositions` option says otherwise): a full answer is followed by another from the last
 * fix time it held (that fix time comes again, as a duplicate ingest drops). How long positions are kept is the
 * server's `database.historyDays` (all by default): the connection's `historyDays` option.
 *
 * The position inside a window is `{ "device": <index in the sorted device list>, "from"?: <fix time> }`.
 */
import { z } from 'zod';
import type { CanonicalReading } from '../../canonical/update.ts';
import type { HistoryAdapter, HistoryContext, HistoryPage, HistoryQuery } from '../history-adapter.ts';
import { ProviderError } from '../provider-error.ts';
import { fetchTraccarDevices, fetchTraccarRoute } from './client.ts';
import { traccarContract } from './contract.ts';
import { knownDevices, learnDevices } from './device-ids.ts';
import { mapPosition } from './mapping.ts';
import { attributeSources, traccarOptionsSchema } from './options.ts';

type TraccarCredentials = { token: string };

/** Traccar's own default of `report.maxPositions` (config/Keys.REPORT_MAX_POSITIONS). */
export const traccarReportMaxPositions = 50_000;

export interface TraccarHistoryOptions {
  timeoutMs?: number;
  /** One window of a backfill; default six hours. */
  windowMs?: number;
}

const positionSchema = z.object({ device: z.number().int().min(0), from: z.string().min(1).optional() }).strict();
type Position = z.infer<typeof positionSchema>;

export function createTraccarHistoryAdapter(settings: TraccarHistoryOptions = {}): HistoryAdapter<TraccarCredentials> {
  const timeoutMs = settings.timeoutMs ?? 10_000;

  async function* readWindow(context: HistoryContext<TraccarCredentials>, query: HistoryQuery): AsyncGenerator<HistoryPage> {
    const parsed = traccarOptionsSchema.safeParse(context.options ?? {});
    if (!parsed.success) throw new ProviderError('permanent', 'Traccar connection options do not fit the contract');
    const sources = attributeSources(parsed.data);
    const limit = parsed.data.reportMaxPositions ?? traccarReportMaxPositions;
    const request = { baseUrl: context.baseUrl, token: context.credentials.token, signal: context.signal, timeoutMs };
    learnDevices(context.session, await fetchTraccarDevices(request));
    const idOf = new Map([...knownDevices(context.session)].map(([id, uniqueId]) => [uniqueId, id]));
    const devices = [...query.devices].sort();
    const stored = positionSchema.safeParse(query.cursor);
    let position: Position = stored.success && stored.data.device < devices.length ? stored.data : { device: 0 };
    let requests = 1;
    for (;;) {
      const uniqueId = devices[position.device]!;
      const deviceId = idOf.get(uniqueId);
      const readings: CanonicalReading[] = [];
      let skipped = 0;
      let next: Position | undefined = position.device + 1 < devices.length ? { device: position.device + 1 } : undefined;
      // A device the server does not list (removed, or not this user's) has no history to read.
      if (deviceId !== undefined) {
        const positions = await fetchTraccarRoute({ ...request, deviceId, from: position.from ?? query.from, to: query.to });
        requests += 1;
        let lastFix: string | undefined;
        for (const item of positions) {
          const mapped = mapPosition(item, (id) => (id === deviceId ? uniqueId : undefined), sources);
          if (!mapped.ok) {
            skipped += 1;
            continue;
          }
          readings.push(...mapped.readings);
          lastFix = (item as { fixTime?: string }).fixTime ?? lastFix;
        }
        // A full answer may have been cut at the server's limit: read on from its last fix time.
        if (positions.length >= limit && lastFix !== undefined && lastFix !== position.from) next = { device: position.device, from: lastFix };
      }
      yield {
        devices: readings.length > 0 ? [{ externalDeviceId: uniqueId, readings }] : [],
        cursor: next ?? null,
        final: next === undefined,
        requests,
        skipped,
      };
      requests = 0;
      if (!next) return;
      position = next;
    }
  }

  return {
    contract: traccarContract,
    windowMs: settings.windowMs ?? 6 * 3600_000,
    keepsDays: (options) => {
      const parsed = traccarOptionsSchema.safeParse(options);
      return parsed.success ? parsed.data.historyDays : undefined;
    },
    fetchHistory: readWindow,
  };
}

export const traccarHistoryAdapter: HistoryAdapter<TraccarCredentials> = createTraccarHistoryAdapter();
