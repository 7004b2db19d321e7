/**
 * Tessie's hosted Tesla Fleet Telemetry stream (developer.tessie.com/reference/access-tesla-fleet-telemetry): one
 * websocket per VIN, `wss://streaming.tessie.com/<VIN>`. Credentials: a Tessie access token (developer settings,
 * "Generate Access Token"). Options: which Tesla field feeds `soc_pct`.
 */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';
import { socFields, type SocField } from '../tesla-fleet-telemetry/wire.ts';

export type TessieCredentials = { accessToken: string };
export type TessieOptions = { socField: SocField };

export const tessieContract = {
  name: 'tessie',
  title: 'Tessie',
  transport: 'stream',
  defaultBaseUrl: 'wss://streaming.tessie.com',
  credentials: z.object({ accessToken: z.string().min(1).max(8192) }).strict(),
  options: z.object({ socField: z.enum(socFields).default('BatteryLevel') }).strict(),
} as const satisfies ProviderConnectionContract<TessieCredentials, TessieOptions>;
