/**
 * Geotab MyGeotab (JSON-RPC, polled). Credentials: database, user name and password for Authenticate.
 *
 * Options: `batteryPowerChargingSign`, which sign of DiagnosticElectricVehicleBatteryPowerId means power flowing
 * into the battery. Geotab's documentation (the SDK KnownId list, the EV diagnostics guide) names the diagnostic
 * but not its sign; the only evidence seen, third-party code, reads negative as charging, hence the default. A
 * connection whose vehicles report the other way sets `positive`.
 */
import { z } from 'zod';
import type { ProviderConnectionContract } from '../provider.ts';

export const batteryPowerSigns = ['negative', 'positive'] as const;
export type BatteryPowerSign = (typeof batteryPowerSigns)[number];

export const geotabOptionsSchema = z
  .object({
    batteryPowerChargingSign: z.enum(batteryPowerSigns).default('negative'),
    /** How far back a backfill may ask, in days: how long the database keeps data depends on its plan (365 when unset). */
    historyDays: z.number().int().min(1).max(3650).optional(),
  })
  .strict();
export type GeotabOptions = z.infer<typeof geotabOptionsSchema>;

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
  options: geotabOptionsSchema,
} as const satisfies ProviderConnectionContract<{ database: string; userName: string; password: string }, GeotabOptions>;
