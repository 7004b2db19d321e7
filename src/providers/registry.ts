/**
 * The explicit list of providers. Adding a provider is one folder and a line or two here; nothing scans
 * directories, and core never branches on a provider's name: it looks the provider up here.
 */
import { geotabPollAdapter } from './geotab/adapter.ts';
import { geotabContract } from './geotab/contract.ts';
import { geotabHistoryAdapter } from './geotab/history.ts';
import type { HistoryAdapter } from './history-adapter.ts';
import type { PollAdapter } from './poll-adapter.ts';
import type { ProviderConnectionContract } from './provider.ts';
import type { AnyStreamAdapter } from './stream-adapter.ts';
import { samsaraPollAdapter } from './samsara/adapter.ts';
import { samsaraContract } from './samsara/contract.ts';
import { samsaraHistoryAdapter } from './samsara/history.ts';
import { teslaFleetTelemetryAdapter } from './tesla-fleet-telemetry/adapter.ts';
import { teslaFleetTelemetryContract } from './tesla-fleet-telemetry/contract.ts';
import { tessieStreamAdapter } from './tessie/adapter.ts';
import { tessieContract } from './tessie/contract.ts';
import { traccarStreamAdapter } from './traccar/adapter.ts';
import { traccarContract } from './traccar/contract.ts';
import { traccarHistoryAdapter } from './traccar/history.ts';

export const providerContracts: readonly ProviderConnectionContract[] = [
  samsaraContract,
  geotabContract,
  traccarContract,
  tessieContract,
  teslaFleetTelemetryContract,
];

/**
 * The adapters core's poll runner uses, by provider name. Each adapter takes its own credentials type; the runner
 * parses decrypted credentials with the adapter's contract schema before it calls `poll`, which is what makes
 * widening them to one map type sound.
 */
export const pollAdapters: ReadonlyMap<string, PollAdapter> = new Map<string, PollAdapter>([
  [samsaraContract.name, samsaraPollAdapter as unknown as PollAdapter],
  [geotabContract.name, geotabPollAdapter as unknown as PollAdapter],
]);

/** The adapters the stream runtime uses, by provider name (credentials parsed as for poll adapters). */
export const streamAdapters: ReadonlyMap<string, AnyStreamAdapter> = new Map<string, AnyStreamAdapter>([
  [traccarContract.name, traccarStreamAdapter as unknown as AnyStreamAdapter],
  [tessieContract.name, tessieStreamAdapter as unknown as AnyStreamAdapter],
  [teslaFleetTelemetryContract.name, teslaFleetTelemetryAdapter as unknown as AnyStreamAdapter],
]);

/**
 * The providers with a history path, which backfill reads (credentials parsed as for poll adapters). A provider
 * missing here answers `backfill_unsupported`.
 */
export const historyAdapters: ReadonlyMap<string, HistoryAdapter> = new Map<string, HistoryAdapter>([
  [samsaraContract.name, samsaraHistoryAdapter as unknown as HistoryAdapter],
  [geotabContract.name, geotabHistoryAdapter as unknown as HistoryAdapter],
  [traccarContract.name, traccarHistoryAdapter as unknown as HistoryAdapter],
]);

export function findProviderContract(name: string): ProviderConnectionContract | undefined {
  return providerContracts.find((contract) => contract.name === name);
}
