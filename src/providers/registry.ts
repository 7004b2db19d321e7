/**
 * The explicit list of providers. Adding a provider is one folder and one line here; nothing scans directories
 * and core never branches on a provider's name.
 */
import { geotabContract } from './geotab/contract.ts';
import type { ProviderConnectionContract } from './provider.ts';
import { samsaraContract } from './samsara/contract.ts';
import { teslaTelemetryContract } from './tesla-telemetry/contract.ts';
import { traccarContract } from './traccar/contract.ts';

export const providerContracts: readonly ProviderConnectionContract[] = [
  samsaraContract,
  geotabContract,
  traccarContract,
  teslaTelemetryContract,
];

export function findProviderContract(name: string): ProviderConnectionContract | undefined {
  return providerContracts.find((contract) => contract.name === name);
}
