/**
 * What a polled provider implements for core's workspace poll runner. An adapter owns its wire format, its
 * client and its cursor; it yields pages of canonical readings per provider device, each with the cursor that
 * covers it. The runner commits each page's readings and its cursor in one transaction, so a failure between
 * pages re-reads from the last committed cursor: nothing lost, and duplicates are absorbed by ingest.
 */
import type { CanonicalChargingSession, CanonicalReading } from '../canonical/update.ts';
import type { ProviderConnectionContract } from './provider.ts';

/** The canonical readings one provider device reported in a page. */
export interface DeviceReadings {
  externalDeviceId: string;
  readings: CanonicalReading[];
  /** Charging sessions the provider reported for the device (Geotab's ChargeEvent), stored with the readings. */
  chargingSessions?: CanonicalChargingSession[];
}

export interface PollPage {
  devices: DeviceReadings[];
  /** The cursor to store once this page is committed (JSON; the adapter's own shape). */
  cursor: unknown;
  /** HTTP (or RPC) requests this page cost, for the poll run record. */
  requests: number;
  /** Provider entities the mapping could not read and skipped (counted in the poll run, never fatal). */
  skipped?: number;
  /** Things worth an operator's attention that did not fail the poll (a feed restarted), kept on the poll run. */
  notes?: string[];
}

export interface PollContext<Credentials, Options = Record<string, unknown>> {
  baseUrl: string;
  credentials: Credentials;
  /** The connection's options, parsed (defaults applied) by the provider's contract. */
  options: Options;
  /** When the connection last polled successfully (RFC 3339), or null: where a feed that must restart can resume from. */
  lastSuccessAt: string | null;
  /** The last committed cursor, or null on the first poll. */
  cursor: unknown;
  /** External ids bound in the workspace on this connection (an adapter may filter by them; unbound ones still pass). */
  boundDevices: readonly string[];
  /** Aborts in-flight requests when the run is cancelled or times out. */
  signal: AbortSignal;
  /** Per-connection memory kept between runs in this process (a session id, a learned id map); never persisted. */
  session: Map<string, unknown>;
}

export interface PollAdapter<Credentials extends Record<string, unknown> = Record<string, unknown>> {
  readonly contract: ProviderConnectionContract<Credentials> & { transport: 'poll' };
  /**
   * Pages from the cursor up to now. Ends when the provider says there is no more for now. Throws
   * ProviderError for every provider failure.
   */
  poll(context: PollContext<Credentials>): AsyncIterable<PollPage>;
}
