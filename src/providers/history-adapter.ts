/**
 * What a provider with a history path implements for core's backfill worker: the readings the provider still holds
 * for some devices over one window of time, page by page, each page with the position after it. The worker splits
 * a backfill's period into windows, commits each page's readings with the job's progress in one transaction, and
 * on a restart hands the last committed position back, so a job resumes where it stopped.
 *
 * A provider without a history path (a pure stream, such as Tesla's fleet telemetry) has no entry in the registry's
 * `historyAdapters`: core answers `backfill_unsupported` for it.
 */
import type { DeviceReadings } from './poll-adapter.ts';
import type { ProviderConnectionContract } from './provider.ts';

export interface HistoryContext<Credentials, Options = Record<string, unknown>> {
  baseUrl: string;
  credentials: Credentials;
  /** The connection's options, parsed (defaults applied) by the provider's contract. */
  options: Options;
  /** Aborts in-flight requests when the job is stopped. */
  signal: AbortSignal;
  /** Memory kept for the job's connection in this process (a session, a learned id map); never persisted. */
  session: Map<string, unknown>;
}

export interface HistoryQuery {
  /** Provider external ids to read; never empty. Readings of other devices are left out. */
  devices: readonly string[];
  /** The window, RFC 3339, both ends included. */
  from: string;
  to: string;
  /** The position a previous page of this window left (its `cursor`), or null at the window's start. */
  cursor: unknown;
}

export interface HistoryPage {
  devices: DeviceReadings[];
  /** Where the next page of this window starts (JSON; the adapter's own shape). */
  cursor: unknown;
  /** True on the window's last page: the worker moves on to the next window with this page's commit. */
  final: boolean;
  /** Provider requests this page cost. */
  requests: number;
  /** Provider entities the mapping could not read and skipped. */
  skipped?: number;
}

export interface HistoryAdapter<Credentials extends Record<string, unknown> = Record<string, unknown>> {
  readonly contract: ProviderConnectionContract<Credentials>;
  /** The length of the windows a backfill is split into: one unit of progress, resumed as a whole. */
  readonly windowMs: number;
  /**
   * How far back the provider still answers, in days, for a connection with these (parsed) options; undefined where
   * neither the provider nor the connection sets a bound.
   */
  keepsDays(options: Record<string, unknown>): number | undefined;
  /** The pages of one window. Throws ProviderError for every provider failure. */
  fetchHistory(context: HistoryContext<Credentials>, query: HistoryQuery): AsyncIterable<HistoryPage>;
}
