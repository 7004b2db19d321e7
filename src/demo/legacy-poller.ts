/**
 * A legacy poller, as a workspace that migrates to core's polling still runs it: it reads the Samsara vehicle-stats
 * feed with its own integration (legacy-samsara.ts) and posts what it read to core's `POST /internal/v1/ingest` as
 * `legacy_poll` updates, with the service token, every interval (the first poll at once). The demo runs it as a
 * process of its own (`fleetwire legacy-poller`), with a defect, so a parity report between it and core's polling
 * has something real to find:
 *
 * - `unitError`: one signal's value multiplied by a factor on some devices (0.621371: miles reported as km);
 * - `lagMs`: every reading held back until it is that old (a poller running behind).
 *
 * Delivery: a feed's cursor moves on only once everything it read is either accepted by core (HTTP 200) or held
 * in the lag buffer. A failed Samsara read or a failed post is logged and the same pages are read again at the
 * next interval, so an outage of core costs nothing but re-reads. The lag buffer is bounded: past its cap the
 * oldest readings are dropped and counted. The cursors live in memory: a restart starts from the latest values.
 */
import { batchesWithinLimits, type CanonicalReading, type CanonicalUpdate } from '../canonical/update.ts';
import type { Logger } from '../logging.ts';
import { legacyFeeds, readFeed, SamsaraReadError, type LegacyReading } from './legacy-samsara.ts';

export interface LegacyPollerDefect {
  /** Multiplies `signal`'s value by `factor` on the devices named (every device when `externalIds` is absent). */
  unitError?: { signal: 'odometer_km'; factor: number; externalIds?: string[] };
  /** Holds every reading back until it is this old before posting it. */
  lagMs?: number;
}

export interface LegacyPollerOptions {
  coreUrl: string;
  serviceToken: string;
  workspaceId: string;
  /** The workspace's Samsara poll connection; its devices' external ids are the Samsara vehicle ids. */
  connectionId: string;
  samsaraUrl: string;
  apiToken: string;
  /** Default 60 s. */
  intervalMs?: number;
  defect?: LegacyPollerDefect;
  logger: Logger;
  /** The clock readings' ages and receipt times are judged by; default the wall clock. */
  now?: () => number;
  /** Readings the lag buffer holds at most; default 100,000. */
  maxHeldReadings?: number;
  /** Per request to Samsara or core; default 15 s. */
  timeoutMs?: number;
}

export interface LegacyPollerStats {
  /** Polls finished, failed ones included. */
  polls: number;
  /** Polls in which a Samsara read or a post to core failed. */
  failedPolls: number;
  /** Readings read from the feeds, re-reads included. */
  readingsRead: number;
  /** Readings in batches core answered 200. */
  readingsPosted: number;
  /** Updates core answered `rejected` (an unbound device, a workspace cut over to core). */
  updatesRejected: number;
  /** Readings in the lag buffer now. */
  held: number;
  /** Readings dropped from a full lag buffer, oldest first. */
  droppedReadings: number;
  lastError: string | null;
}

export interface LegacyPoller {
  readonly stats: Readonly<LegacyPollerStats>;
  /** Idempotent; cancels the poll under way and waits for it. */
  stop(): Promise<void>;
}

const defaults = { intervalMs: 60_000, maxHeldReadings: 100_000, timeoutMs: 15_000 };

export function startLegacyPoller(options: LegacyPollerOptions): LegacyPoller {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? defaults.intervalMs;
  const maxHeld = options.maxHeldReadings ?? defaults.maxHeldReadings;
  const timeoutMs = options.timeoutMs ?? defaults.timeoutMs;
  const lagMs = options.defect?.lagMs ?? 0;
  const { logger } = options;
  const stats: LegacyPollerStats = { polls: 0, failedPolls: 0, readingsRead: 0, readingsPosted: 0, updatesRejected: 0, held: 0, droppedReadings: 0, lastError: null };
  const cursors = new Map<string, string | undefined>();
  /** Readings waiting for their age, oldest first. */
  let held: LegacyReading[] = [];
  const abort = new AbortController();
  const distort = unitErrorOf(options.defect);

  const fail = (message: string, fields: Record<string, unknown> = {}) => {
    stats.lastError = message;
    logger.warn({ 'fleetwire.connection.id': options.connectionId, ...fields }, `legacy poller: ${message}; tried again next interval`);
  };

  async function poll(): Promise<void> {
    const access = { samsaraUrl: options.samsaraUrl, apiToken: options.apiToken, timeoutMs, signal: abort.signal };
    const fetched: LegacyReading[] = [];
    const reached = new Map<string, string | undefined>();
    let failed = false;
    for (const types of legacyFeeds) {
      const key = types.join(',');
      try {
        const read = await readFeed(access, types, cursors.get(key));
        fetched.push(...read.readings.map(distort));
        reached.set(key, read.cursor);
      } catch (error) {
        if (abort.signal.aborted) return;
        failed = true;
        fail(error instanceof Error ? error.message : String(error), error instanceof SamsaraReadError && error.status ? { 'http.response.status_code': error.status } : {});
      }
    }
    stats.readingsRead += fetched.length;
    const cutoff = now() - lagMs;
    const due: LegacyReading[] = [];
    const later: LegacyReading[] = [];
    for (const reading of [...held, ...fetched]) (reading.observedMs <= cutoff ? due : later).push(reading);
    if (due.length > 0 && !(await post(due))) {
      // Nothing moves: the held readings stay held, and what this poll read is read again from the same cursors.
      stats.failedPolls += 1;
      return;
    }
    for (const [key, cursor] of reached) cursors.set(key, cursor);
    held = later.sort((a, b) => a.observedMs - b.observedMs);
    if (held.length > maxHeld) {
      const dropped = held.length - maxHeld;
      held = held.slice(dropped);
      stats.droppedReadings += dropped;
      logger.warn({ 'fleetwire.legacy.dropped': stats.droppedReadings }, `legacy poller: the lag buffer is full; dropped the ${dropped} oldest readings`);
    }
    stats.held = held.length;
    if (failed) stats.failedPolls += 1;
  }

  /** Posts readings as one update per device, in batches within the ingest limits; true when every batch got a 200. */
  async function post(readings: readonly LegacyReading[]): Promise<boolean> {
    const receivedAt = new Date(now()).toISOString();
    const byDevice = new Map<string, CanonicalReading[]>();
    for (const { externalId, reading } of readings) {
      const list = byDevice.get(externalId);
      if (list) list.push(reading);
      else byDevice.set(externalId, [reading]);
    }
    const updates: CanonicalUpdate[] = [...byDevice].map(([externalDeviceId, list]) => ({
      workspaceId: options.workspaceId,
      provider: 'samsara',
      connectionId: options.connectionId,
      externalDeviceId,
      source: 'legacy_poll',
      receivedAt,
      readings: list,
    }));
    for (const batch of batchesWithinLimits(updates)) {
      const answer = await sendBatch(batch);
      if (!answer.ok) {
        if (!abort.signal.aborted) fail(answer.message, answer.status ? { 'http.response.status_code': answer.status } : {});
        return false;
      }
      stats.readingsPosted += batch.reduce((n, u) => n + u.readings.length, 0);
      const rejected = answer.results.filter((r) => r.status === 'rejected');
      stats.updatesRejected += rejected.length;
      if (rejected.length > 0) {
        const reasons = [...new Set(rejected.map((r) => r.reason ?? 'unknown'))].join(', ');
        logger.warn({ 'fleetwire.legacy.rejected': rejected.length }, `legacy poller: core rejected ${rejected.length} of ${batch.length} updates (${reasons})`);
      }
    }
    return true;
  }

  async function sendBatch(batch: CanonicalUpdate[]): Promise<{ ok: true; results: { status: string; reason?: string }[] } | { ok: false; status?: number; message: string }> {
    let response: Response;
    try {
      response = await fetch(`${options.coreUrl.replace(/\/+$/, '')}/internal/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.serviceToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ updates: batch }),
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (error) {
      return { ok: false, message: `core is not reachable at ${options.coreUrl} (${error instanceof Error ? error.name : 'error'})` };
    }
    const text = await response.text().catch(() => '');
    if (response.status !== 200) {
      const code = problemCode(text);
      return { ok: false, status: response.status, message: `core answered ${response.status}${code ? ` ${code}` : ''} to a batch of ${batch.length} updates` };
    }
    try {
      const body = JSON.parse(text) as { results?: { status: string; reason?: string }[] };
      return { ok: true, results: Array.isArray(body.results) ? body.results : [] };
    } catch {
      // Core took the batch (200); an answer it garbled on the way back is no reason to send the batch again.
      return { ok: true, results: [] };
    }
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = () => {
    const startedAt = Date.now();
    running = poll()
      .catch((error: unknown) => {
        stats.failedPolls += 1;
        fail(error instanceof Error ? error.message : String(error));
      })
      .finally(() => {
        stats.polls += 1;
        running = undefined;
        if (!stopped) timer = setTimeout(tick, Math.max(0, startedAt + intervalMs - Date.now()));
      });
  };
  tick();
  logger.info(
    { 'fleetwire.connection.id': options.connectionId, 'fleetwire.legacy.interval_ms': intervalMs, 'fleetwire.legacy.lag_ms': lagMs, 'fleetwire.legacy.unit_error': options.defect?.unitError ?? null },
    'legacy poller started',
  );

  let stopping: Promise<void> | undefined;
  return {
    stats,
    stop() {
      stopping ??= (async () => {
        stopped = true;
        clearTimeout(timer);
        abort.abort();
        await running;
        logger.info({ 'fleetwire.connection.id': options.connectionId }, 'legacy poller stopped');
      })();
      return stopping;
    },
  };
}

/** The defect's unit error as a function of a reading; the identity when there is none. */
function unitErrorOf(defect: LegacyPollerDefect | undefined): (reading: LegacyReading) => LegacyReading {
  const unitError = defect?.unitError;
  if (!unitError) return (reading) => reading;
  const devices = unitError.externalIds ? new Set(unitError.externalIds) : undefined;
  return (r) => {
    if (r.reading.signal !== unitError.signal || (devices && !devices.has(r.externalId))) return r;
    // Rounded to the metre, as a system that stores kilometres to three decimals would send it.
    return { ...r, reading: { ...r.reading, value: Math.round(r.reading.value * unitError.factor * 1000) / 1000 } };
  };
}

function problemCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}
