/**
 * What every provider folder exports: the contract of its connections (transport, default base URL, the shape of
 * its credentials). The scheduled poll path and the stream runtime extend this with their adapters.
 */
import type { z } from 'zod';

export type Transport = 'poll' | 'stream';

export interface ProviderConnectionContract<Credentials extends Record<string, unknown> = Record<string, unknown>> {
  /** The provider's name as it appears in connections and canonical updates. */
  readonly name: string;
  readonly title: string;
  readonly transport: Transport;
  /** Used when a connection is created without a base URL; undefined where the operator must give one. */
  readonly defaultBaseUrl: string | undefined;
  readonly credentials: z.ZodType<Credentials>;
}
