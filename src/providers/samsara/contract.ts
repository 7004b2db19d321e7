/**
 * Samsara vehicle stats (REST, polled). Credentials: an API token with "Read Vehicle Statistics" (the scope the
 * SDK's vehicleStats methods name). Options: the API version to pin and how far before the last successful poll a
 * feed restart reads history (docs/PROVIDERS.md, "Samsara").
 */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';
import { samsaraApiVersion, samsaraApiVersionPattern } from './wire.ts';

export interface SamsaraOptions extends Record<string, unknown> {
  /** `X-Samsara-Version` sent with every request. */
  apiVersion: string;
  /**
   * When a feed must restart (its cursor was refused, or its type group is new), history is read from this many
   * minutes before the connection's last successful poll: readings that reached Samsara late are not lost.
   */
  restartOverlapMinutes: number;
  /**
   * How far back a backfill may ask `/fleet/vehicles/stats/history`, in days. Samsara documents no bound; unset,
   * backfill assumes 365 (history.ts).
   */
  historyDays?: number | undefined;
}

export const samsaraOptionsSchema = z
  .object({
    apiVersion: z.string().regex(samsaraApiVersionPattern, 'a Samsara API version is a date, YYYY-MM-DD').default(samsaraApiVersion),
    restartOverlapMinutes: z.number().int().min(0).max(24 * 60).default(15),
    historyDays: z.number().int().min(1).max(3650).optional(),
  })
  .strict();

export const samsaraContract = {
  name: 'samsara',
  title: 'Samsara',
  transport: 'poll',
  defaultBaseUrl: 'https://api.samsara.com',
  credentials: z.object({ apiToken: z.string().min(1).max(4096) }).strict(),
  options: samsaraOptionsSchema,
} as const satisfies ProviderConnectionContract<{ apiToken: string }, SamsaraOptions>;
