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
 * Every `types` value Samsara documents for the three vehicle-stats endpoints, in the order of the official
 * TypeScript SDK's `GetVehicleStatsFeedRequestTypesItem` (@samsarahq/samsara 11.11.1; the history and snapshot
 * enums are the same set). The simulator answers 400 to any other value, as Samsara answers an unknown type.
 */
export const samsaraStatTypes = [
  'ambientAirTemperatureMilliC',
  ...(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13'] as const).map((n) => `auxInput${n}` as const),
  'barometricPressurePa',
  'batteryMilliVolts',
  'defLevelMilliPercent',
  'ecuSpeedMph',
  'engineCoolantTemperatureMilliC',
  'engineImmobilizer',
  'engineLoadPercent',
  'engineOilPressureKPa',
  'engineRpm',
  'engineStates',
  'faultCodes',
  'fuelPercents',
  'fuelConsumedMilliliters',
  'gps',
  'gpsDistanceMeters',
  'gpsOdometerMeters',
  'idlingDurationMilliseconds',
  'intakeManifoldTemperatureMilliC',
  'nfcCardScans',
  'obdEngineSeconds',
  'obdOdometerMeters',
  'syntheticEngineSeconds',
  'evStateOfChargeMilliPercent',
  'evChargingStatus',
  'evChargingEnergyMicroWh',
  'evChargingVoltageMilliVolt',
  'evChargingCurrentMilliAmp',
  'evConsumedEnergyMicroWh',
  'evRegeneratedEnergyMicroWh',
  'evBatteryVoltageMilliVolt',
  'evBatteryCurrentMilliAmp',
  'evBatteryStateOfHealthMilliPercent',
  'evAverageBatteryTemperatureMilliCelsius',
  'evDistanceDrivenMeters',
  'spreaderLiquidRate',
  'spreaderGranularRate',
  'spreaderPrewetRate',
  'spreaderAirTemp',
  'spreaderRoadTemp',
  'spreaderOnState',
  'spreaderActive',
  'spreaderBlastState',
  'spreaderGranularName',
  'spreaderPrewetName',
  'spreaderLiquidName',
  'spreaderPlowStatus',
  'seatbeltDriver',
  'tellTales',
  'ecuDoorStatus',
] as const;
export type SamsaraStatType = (typeof samsaraStatTypes)[number];

export function isSamsaraStatType(name: string): name is SamsaraStatType {
  return (samsaraStatTypes as readonly string[]).includes(name);
}

/**
 * The `decorations` values Samsara documents (SDK `GetVehicleStatsFeedRequestDecorationsItem`, the same set for
 * history): the stat types less `gpsOdometerMeters`, `syntheticEngineSeconds` and every `ev*` type.
 */
const notDecorations: ReadonlySet<string> = new Set(['gpsOdometerMeters', 'syntheticEngineSeconds']);
export const samsaraDecorationTypes = samsaraStatTypes.filter((t) => !t.startsWith('ev') && !notDecorations.has(t));

export function isSamsaraDecorationType(name: string): name is SamsaraStatType {
  return (samsaraDecorationTypes as readonly string[]).includes(name);
}

/** Samsara accepts at most this many `types` per call, counted by {@link countedTypes}. */
export const maxTypesPerCall = 3;
/** And at most this many `decorations`. */
export const maxDecorationsPerCall = 2;

/**
 * How many types a `types` list counts as against {@link maxTypesPerCall}: `auxInput3` to `auxInput10` count as one
 * type together, every other value (`auxInput1`, `auxInput2`, `auxInput11`-`13` included) as one each. Source: the
 * `types` parameter text of the SDK's GetVehicleStatsFeedRequest / GetVehicleStatsHistoryRequest.
 */
export function countedTypes(types: readonly string[]): number {
  const distinct = new Set(types);
  let count = 0;
  let aux3to10 = false;
  for (const type of distinct) {
    const aux = /^auxInput(\d+)$/.exec(type);
    if (aux && Number(aux[1]) >= 3 && Number(aux[1]) <= 10) aux3to10 = true;
    else count += 1;
  }
  return count + (aux3to10 ? 1 : 0);
}

/**
 * The `X-Samsara-Version` we send. Samsara versions its API by date (`YYYY-MM-DD`; "Versioning" guide,
 * developers.samsara.com/docs/versioning: a request without the header gets the version of its API token, which can
 * differ per token); `2025-06-11` is the version the official TypeScript SDK pins (BaseClient.ts, @samsarahq/samsara
 * 11.11.1), the one whose response types this folder is written against.
 */
export const samsaraApiVersion = '2025-06-11';
export const samsaraApiVersionPattern = /^\d{4}-\d{2}-\d{2}$/;

/** Cursors expire after 30 days (Samsara "Pagination" guide, "Cursor Expiration"). */
export const cursorLifetimeMs = 30 * 24 * 3600_000;

export const engineStateValues = ['Off', 'On', 'Idle'] as const;
export type EngineStateValue = (typeof engineStateValues)[number];

/** Samsara's `evChargingStatus` codes. */
export const evChargingStatusCodes = { unknown: 0, notCharging: 1, charging: 2 } as const;

/** An RFC 3339 time as Samsara sends it (always UTC in responses; we still accept offsets). */
const wireTime = z.string().min(1);

/** `decorations` ride on entries of the non-EV types when they were requested; the mapping does not read them. */
const decorationsSchema = z.record(z.string(), z.unknown()).optional();

export const timedNumberSchema = z.object({ time: wireTime, value: z.number(), decorations: decorationsSchema });
export type TimedNumber = z.infer<typeof timedNumberSchema>;

export const engineStateEntrySchema = z.object({ time: wireTime, value: z.enum(engineStateValues), decorations: decorationsSchema });
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
  decorations: decorationsSchema,
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
  ecuSpeedMph?: TimedNumber[];
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

/**
 * One vehicle of `GET /fleet/vehicles` (SDK `VehicleResponseObjectResponseBody`: `id` and `createdAtTime` are
 * required; the rest are optional). Only what the simulator fills in is listed.
 */
export interface VehicleListItemOut {
  id: string;
  name: string;
  vin: string;
  externalIds: Record<string, string>;
  createdAtTime: string;
  updatedAtTime: string;
  make?: string;
  model?: string;
  tags: { id: string; name: string }[];
}
export interface VehicleListBody {
  data: VehicleListItemOut[];
  pagination: Pagination;
}
