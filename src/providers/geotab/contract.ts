/** Geotab MyGeotab (JSON-RPC, polled). Credentials: database, user name and password for Authenticate. */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';

export const geotabContract = {
  name: 'geotab',
  title: 'Geotab',
  transport: 'poll',
  defaultBaseUrl: 'https://my.geotab.com',
  credentials: z
    .object({
      database: z.string().min(1).max(256),
      userName: z.string().min(1).max(256),
      password: z.string().min(1).max(1024),
    })
    .strict(),
} as const satisfies ProviderConnectionContract<{ database: string; userName: string; password: string }>;
