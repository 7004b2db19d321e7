/**
 * Tesla Fleet Telemetry records (websocket, streamed, one socket per VIN). Credentials: an access token; the base
 * URL is the telemetry server's.
 */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';

export const teslaTelemetryContract = {
  name: 'tesla-telemetry',
  title: 'Tesla Fleet Telemetry',
  transport: 'stream',
  defaultBaseUrl: undefined,
  credentials: z.object({ accessToken: z.string().min(1).max(8192) }).strict(),
} as const satisfies ProviderConnectionContract<{ accessToken: string }>;
