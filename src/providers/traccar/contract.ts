/**
 * Traccar (websocket /api/socket, streamed). Credentials: an API token (POST /api/session/token; it expires after
 * 7 days unless made with a later `expiration`, see docs/PROVIDERS.md); the base URL is the operator's server.
 * Options: which position attributes carry which signals (options.ts).
 */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';
import { traccarOptionsSchema, type TraccarOptions } from './options.ts';

export const traccarContract = {
  name: 'traccar',
  title: 'Traccar',
  transport: 'stream',
  defaultBaseUrl: undefined,
  credentials: z.object({ token: z.string().min(1).max(4096) }).strict(),
  options: traccarOptionsSchema,
} as const satisfies ProviderConnectionContract<{ token: string }, TraccarOptions>;
