/**
 * Samsara vehicle-stats wire format, as described in the Samsara API reference for `GET /fleet/vehicles/stats`,
 * `/fleet/vehicles/stats/feed` and `/fleet/vehicles/stats/history` (developers.samsara.com; field names as in the
 * official TypeScript SDK's VehicleStats* types). Our summary: shared/reference/provider-wire-formats.md §1.
 *
 * Validation happens at two levels on purpose. The client checks the envelope (`data` is a list, `pagination` is
 * there): without it we cannot move a cursor, so a mismatch is `malformed_response`. The mapping checks each stat
 * entry on its own: one entry Samsara adds a new enum value to must not make the whole page unreadable, or the
 * cursor would be stuck behind it forever.
 */
import { z } from 'zod';

/**
 * The `types` values we know (a subset of Samsara's list: the EV-relevant ones). The simulator rejects any other
 * value, as Samsara rejects an unknown type.
 */
export const samsaraStatTypes = [
  'gps',
  'obdOdometerMeters',
  'gpsOdometerMeters',
  'gpsDistanceMeters',
  'engineStates',
  'evStateOfChargeMilliPercent',
  'evChargingStatus',
  'evChargingEnergyMicroWh',
  'evConsumedEnergyMicroWh',
  'evRegeneratedEnergyMicroWh',
  'evChargingVoltageMilliVolt',
  'evBatteryVoltageMilliVolt',
  'evChargingCurrentMilliAmp',
  'evBatteryCurrentMilliAmp',
  'evBatteryStateOfHealthMilliPercent',
  'evAverageBatteryTemperatureMilliCelsius',
  'evDistanceDrivenMeters',
  'ecuSpeedMph',
  'batteryMilliVolts',
  'ambientAirTemperatureMilliC',
] as const;
export type SamsaraStatType = (typeof samsaraStatTypes)[number];

export function isSamsaraStatType(name: string): name is SamsaraStatType {
  return (samsaraStatTypes as readonly string[]).includes(name);
}

/** Samsara accepts at most this many `types` per call. */
export const maxTypesPerCall = 3;

export const engineStateValues = ['Off', 'On', 'Idle'] as const;
export type EngineStateValue = (typeof engineStateValues)[number];

/** Samsara's `evChargingStatus` codes. */
export const evChargingStatusCodes = { unknown: 0, notCharging: 1, charging: 2 } as const;

/** An RFC 3339 time as Samsara sends it (always UTC in responses; we still accept offsets). */
const wireTime = z.string().min(1);

export const timedNumberSchema = z.object({ time: wireTime, value: z.number() });
export type TimedNumber = z.infer<typeof timedNumberSchema>;

export const engineStateEntrySchema = z.object({ time: wireTime, value: z.enum(engineStateValues) });
export type EngineStateEntry = z.infer<typeof engineStateEntrySchema>;

export const gpsPointSchema = z.object({
  time: wireTime,
  latitude: z.number(),
  longitude: z.number(),
  headingDegrees: z.number().optional(),
  /** Miles per hour, not km/h. */
  speedMilesPerHour: z.number().optional(),
  isEcuSpeed: z.boolean().optional(),
  address: z.object({ id: z.string().optional(), name: z.string().optional() }).optional(),
  reverseGeo: z.object({ formattedLocation: z.string().optional() }).optional(),
  /** Present when `decorations` were requested; decoration payloads for gps and basic types carry no time. */
  decorations: z.record(z.string(), z.unknown()).optional(),
});
export type GpsPoint = z.infer<typeof gpsPointSchema>;

/** The stats this project reads, as they appear in feed and history items (arrays, one entry per change). */
export interface VehicleStatsListItem {
  id: string;
  name?: string;
  externalIds?: Record<string, string>;
  gps?: GpsPoint[];
  obdOdometerMeters?: TimedNumber[];
  gpsOdometerMeters?: TimedNumber[];
  engineStates?: EngineStateEntry[];
  evStateOfChargeMilliPercent?: TimedNumber[];
  evChargingStatus?: TimedNumber[];
  evAverageBatteryTemperatureMilliCelsius?: TimedNumber[];
}

/**
 * Snapshot items carry one object per stat, and the engine key is singular (`engineState`) although the
 * `types` value is `engineStates`: the quirk is Samsara's, not ours.
 */
export interface VehicleStatsSnapshotItem {
  id: string;
  name?: string;
  externalIds?: Record<string, string>;
  gps?: GpsPoint;
  obdOdometerMeters?: TimedNumber;
  gpsOdometerMeters?: TimedNumber;
  engineState?: EngineStateEntry;
  evStateOfChargeMilliPercent?: TimedNumber;
  evChargingStatus?: TimedNumber;
  evAverageBatteryTemperatureMilliCelsius?: TimedNumber;
}

/** `endCursor` may be the empty string (the snapshot sends one). */
export const paginationSchema = z.object({ endCursor: z.string(), hasNextPage: z.boolean() });
export type Pagination = z.infer<typeof paginationSchema>;

/** Feed and history responses. Items stay `unknown` here: the mapping reads them entry by entry. */
export const vehicleStatsListResponseSchema = z.object({ data: z.array(z.unknown()), pagination: paginationSchema });
export type VehicleStatsListResponse = z.infer<typeof vehicleStatsListResponseSchema>;

/** Snapshot responses: the same envelope, single objects per stat inside the items. */
export const vehicleStatsSnapshotResponseSchema = vehicleStatsListResponseSchema;
export type VehicleStatsSnapshotResponse = VehicleStatsListResponse;

/** The body of every 4xx and 5xx answer. Neither field is guaranteed to be present on a proxy's error page. */
export const errorBodySchema = z.object({ message: z.string().optional(), requestId: z.string().optional() });
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** What the simulator writes on the wire (typed, so the simulator cannot drift from the shapes above). */
export interface VehicleStatsListBody {
  data: VehicleStatsListItem[];
  pagination: Pagination;
}
export interface VehicleStatsSnapshotBody {
  data: VehicleStatsSnapshotItem[];
  pagination: Pagination;
}
export interface ErrorBodyOut {
  message: string;
  requestId: string;
}
