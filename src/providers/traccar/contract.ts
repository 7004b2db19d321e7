/** Traccar (websocket /api/socket, streamed). Credentials: an API token; the base URL is the operator's server. */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';

export const traccarContract = {
  name: 'traccar',
  title: 'Traccar',
  transport: 'stream',
  defaultBaseUrl: undefined,
  credentials: z.object({ token: z.string().min(1).max(4096) }).strict(),
} as const satisfies ProviderConnectionContract<{ token: string }>;
