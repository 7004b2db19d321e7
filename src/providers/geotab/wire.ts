/**
 * MyGeotab JSON-RPC wire format: the envelopes, the Authenticate and GetFeed results, and the entities Fleetwire
 * reads (StatusData, LogRecord, DeviceStatusInfo, Device). Follows the shapes of the MyGeotab SDK guides
 * "Concepts" and "Data feed" as summarised in shared/reference/provider-wire-formats.md §2.
 *
 * Entities are schema-checked one by one by the mapping (a bad entity is skipped, not fatal), so the result
 * schemas here keep `data` as unknown items. Entity schemas are not strict: MyGeotab adds properties freely.
 */
import { z } from 'zod';

/** What a connection stores (contract.ts): the login Authenticate takes. A type, not an interface, so it is a Record. */
export type GeotabLogin = {
  database: string;
  userName: string;
  password: string;
};

/** The feeds Fleetwire follows with GetFeed. ChargeEvent is a calculated feed (MyGeotab 11.4, January 2024). */
export const feedTypeNames = ['StatusData', 'LogRecord', 'ChargeEvent'] as const;
export type FeedTypeName = (typeof feedTypeNames)[number];

/** GetFeed and Get answer at most this many entities; GetFeed silently clamps larger limits to it. */
export const maxResultsLimit = 50_000;

/**
 * The diagnostics Fleetwire maps. StatusData feeds carry every diagnostic the device reports; anything else is
 * ignored on the client.
 */
export const diagnosticIds = {
  stateOfCharge: 'DiagnosticStateOfChargeId',
  /** Corrected ECM odometer: raw × odometer factor + odometer offset (SDK guide "GO device logging"). */
  odometer: 'DiagnosticOdometerId',
  /** Adjusted odometer: the ECM odometer plus GPS distance since it was last reported, or the GPS odometer. */
  odometerAdjustment: 'DiagnosticOdometerAdjustmentId',
  /** Heavy-duty total vehicle distance (J1939, J1708), read by Geotab's own odometer sample. */
  j1939TotalVehicleDistance: 'DiagnosticJ1939TotalVehicleDistanceId',
  j1708TotalVehicleDistance: 'DiagnosticJ1708TotalVehicleDistanceId',
  /** The OBD-II odometer; the typings spell it diagnosticObdOdometerReaderId (ids are matched without case). */
  obdOdometer: 'DiagnosticOBDOdometerReaderId',
  chargingState: 'DiagnosticElectricVehicleChargingStateId',
  isCharging: 'DiagnosticElectricVehicleIsChargingId',
  ignition: 'DiagnosticIgnitionId',
  batteryTemperature: 'DiagnosticBatteryTemperatureId',
  batteryPower: 'DiagnosticElectricVehicleBatteryPowerId',
} as const;

/** The JSON-RPC error types Fleetwire branches on (`error.data.type`). */
export const errorTypes = {
  invalidUser: 'InvalidUserException',
  overLimit: 'OverLimitException',
  dbUnavailable: 'DbUnavailableException',
  missingMethod: 'MissingMethodException',
  argument: 'ArgumentException',
  jsonSerializer: 'JsonSerializerException',
} as const;

export const jsonRpcRequestSchema = z.object({
  method: z.string().min(1),
  params: z.record(z.string(), z.unknown()).optional(),
  id: z.union([z.number(), z.string(), z.null()]).optional(),
  jsonrpc: z.literal('2.0').optional(),
});
export type JsonRpcRequest = z.infer<typeof jsonRpcRequestSchema>;

export const jsonRpcErrorSchema = z.object({
  code: z.number(),
  name: z.string().optional(),
  message: z.string(),
  data: z
    .object({
      id: z.string().optional(),
      type: z.string().optional(),
      requestIndex: z.number().optional(),
    })
    .optional(),
  errors: z.array(z.object({ name: z.string(), message: z.string().optional() })).optional(),
});
export type JsonRpcError = z.infer<typeof jsonRpcErrorSchema>;

export const jsonRpcErrorEnvelopeSchema = z.object({
  error: jsonRpcErrorSchema,
  jsonrpc: z.literal('2.0').optional(),
});

/** A success envelope; `result` must be present (null is a valid result of some methods, undefined is not). */
export const jsonRpcResultEnvelopeSchema = z.object({
  result: z.unknown().refine((value) => value !== undefined, 'result is required'),
  jsonrpc: z.literal('2.0').optional(),
});

/** The error's type: `data.type` first, then the first entry of `errors`, as the official clients read it. */
export function errorTypeOf(error: JsonRpcError): string | undefined {
  return error.data?.type ?? error.errors?.[0]?.name;
}

/** What every call after Authenticate sends inside `params.credentials`. */
export const sessionCredentialsSchema = z.object({
  database: z.string().min(1),
  sessionId: z.string().min(1),
  userName: z.string().min(1),
});
export type SessionCredentials = z.infer<typeof sessionCredentialsSchema>;

/** `path` is "ThisServer" or the host that serves this database from now on. */
export const authenticateResultSchema = z.object({
  credentials: sessionCredentialsSchema,
  path: z.string().min(1),
});
export type AuthenticateResult = z.infer<typeof authenticateResultSchema>;

export const thisServer = 'ThisServer';

/** `toVersion` is opaque to clients; it is only ever sent back as `fromVersion`. */
export const feedResultSchema = z.object({
  data: z.array(z.unknown()),
  toVersion: z.string().min(1),
});
export type FeedResult = z.infer<typeof feedResultSchema>;

export const getResultSchema = z.array(z.unknown());

const entityRef = z.object({ id: z.string().min(1) });

export const statusDataSchema = z.object({
  id: z.string().optional(),
  dateTime: z.string(),
  data: z.number(),
  device: entityRef,
  diagnostic: entityRef,
});
export type StatusData = z.infer<typeof statusDataSchema>;

/** A GPS record. Speed is km/h (MyGeotab always answers metric). There is no heading here. */
export const logRecordSchema = z.object({
  id: z.string().optional(),
  dateTime: z.string(),
  latitude: z.number(),
  longitude: z.number(),
  speed: z.number(),
  device: entityRef,
});
export type LogRecord = z.infer<typeof logRecordSchema>;

/** The current state of a device; the only place MyGeotab gives a heading (`bearing`, whole degrees). */
export const deviceStatusInfoSchema = z.object({
  id: z.string().optional(),
  bearing: z.number(),
  dateTime: z.string(),
  device: entityRef,
  latitude: z.number().optional(),
  longitude: z.number().optional(),
  speed: z.number().optional(),
  isDeviceCommunicating: z.boolean().optional(),
  isDriving: z.boolean().optional(),
  currentStateDuration: z.string().optional(),
});
export type DeviceStatusInfo = z.infer<typeof deviceStatusInfoSchema>;

/** A MyGeotab Coordinate: x is the longitude, y the latitude. */
const coordinateSchema = z.object({ x: z.number(), y: z.number() });

/**
 * A ChargeEvent (API reference, objects/ChargeEvent): one charge of an EV, calculated by MyGeotab, so a later
 * version of the same id may replace it. `duration` is a .NET TimeSpan ("d.hh:mm:ss.fffffff"); the states of charge
 * are 0-100; energies are kWh and powers kW. Only the fields Fleetwire reads are listed; any may be missing or null.
 */
export const chargeEventSchema = z.object({
  id: z.string().min(1),
  startTime: z.string(),
  duration: z.string().nullish(),
  device: entityRef,
  startStateOfCharge: z.number().nullish(),
  endStateOfCharge: z.number().nullish(),
  energyConsumedKwh: z.number().nullish(),
  peakPowerKw: z.number().nullish(),
  maxACVoltage: z.number().nullish(),
  chargeType: z.string().nullish(),
  chargeIsEstimated: z.boolean().nullish(),
  chargingStartedOdometerKm: z.number().nullish(),
  location: coordinateSchema.nullish(),
});
export type ChargeEvent = z.infer<typeof chargeEventSchema>;

export const deviceSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  serialNumber: z.string().optional(),
  vehicleIdentificationNumber: z.string().optional(),
});
export type Device = z.infer<typeof deviceSchema>;
