/** Samsara vehicle stats (REST, polled). Credentials: an API token with "Read Vehicle Statistics". */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';

export const samsaraContract = {
  name: 'samsara',
  title: 'Samsara',
  transport: 'poll',
  defaultBaseUrl: 'https://api.samsara.com',
  credentials: z.object({ apiToken: z.string().min(1).max(4096) }).strict(),
} as const satisfies ProviderConnectionContract<{ apiToken: string }>;
