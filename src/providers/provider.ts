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
