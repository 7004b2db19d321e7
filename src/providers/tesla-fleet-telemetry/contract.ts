/**
 * Tesla Fleet Telemetry as Tesla ships it (teslamotors/fleet-telemetry): the partner's own telemetry server takes
 * the vehicles' mTLS connections and hands every record to its dispatchers; Fleetwire subscribes to the MQTT or
 * the Redis dispatcher. The base URL names the broker and where the records are:
 * `mqtt://host:port/<topic_base>` (or `mqtts://`) for the MQTT dispatcher, `redis://host:port/<namespace>` (or
 * `rediss://`) for the Redis one. Credentials: the broker's, both optional (`{}` for a broker without accounts).
 * Options: which Tesla field feeds `soc_pct`.
 */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';
import { socFields, type SocField } from './wire.ts';

export type TeslaFleetTelemetryCredentials = { username?: string; password?: string };
export type TeslaFleetTelemetryOptions = { socField: SocField };

export const teslaFleetTelemetryContract = {
  name: 'tesla-fleet-telemetry',
  title: 'Tesla Fleet Telemetry',
  transport: 'stream',
  defaultBaseUrl: undefined,
  baseUrlSchemes: ['mqtt:', 'mqtts:', 'redis:', 'rediss:'],
  credentials: z.object({ username: z.string().min(1).max(1024).optional(), password: z.string().min(1).max(8192).optional() }).strict(),
  options: z.object({ socField: z.enum(socFields).default('BatteryLevel') }).strict(),
} as const satisfies ProviderConnectionContract<TeslaFleetTelemetryCredentials, TeslaFleetTelemetryOptions>;
