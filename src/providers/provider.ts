/**
 * What every provider folder exports: the contract of its connections (transport, default base URL, the shape of
 * its credentials). The scheduled poll path and the stream runtime extend this with their adapters.
 */
import { z } from 'zod';

export type Transport = 'poll' | 'stream';

export interface ProviderConnectionContract<
  Credentials extends Record<string, unknown> = Record<string, unknown>,
  Options extends Record<string, unknown> = Record<string, unknown>,
> {
  /** The provider's name as it appears in connections and canonical updates. */
  readonly name: string;
  readonly title: string;
  readonly transport: Transport;
  /** Used when a connection is created without a base URL; undefined where the operator must give one. */
  readonly defaultBaseUrl: string | undefined;
  /**
   * The URL schemes a base URL may have (with the colon, as `URL.protocol` writes them); http(s) and ws(s) when not
   * given. A provider read through a broker names the broker's (`mqtt:`, `redis:`).
   */
  readonly baseUrlSchemes?: readonly string[];
  readonly credentials: z.ZodType<Credentials>;
  /**
   * A connection's settings that are not secret (stored in the clear and answered by the API), with their
   * defaults; a provider without this takes none.
   */
  readonly options?: z.ZodType<Options>;
}

/** The options schema of a provider: its own, or none at all. */
export function optionsSchemaOf(contract: Pick<ProviderConnectionContract, 'options'>): z.ZodType<Record<string, unknown>> {
  return contract.options ?? noOptions;
}

const noOptions = z.object({}).strict();

const webSchemes = ['http:', 'https:', 'ws:', 'wss:'] as const;

/** The base URL schemes a provider's connections may use. */
export function baseUrlSchemesOf(contract: Pick<ProviderConnectionContract, 'baseUrlSchemes'>): readonly string[] {
  return contract.baseUrlSchemes ?? webSchemes;
}
