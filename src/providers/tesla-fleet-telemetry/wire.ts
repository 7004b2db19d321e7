/**
 * Tesla Fleet Telemetry on the wire as a consumer of a fleet-telemetry server sees it (teslamotors/fleet-telemetry
 * @ 4767414; reference/provider-wire-formats.md §3b):
 * - records in their JSON form (`transmit_decoded_records: true`; protos/vehicle_data.proto, vehicle_alert.proto,
 *   vehicle_error.proto, vehicle_connectivity.proto marshalled by telemetry/record.go: protojson, lowerCamel names,
 *   enums as names, unpopulated fields emitted). Tessie's hosted websocket relays the same records;
 * - the MQTT dispatcher's messages (datastore/mqtt/mqtt_payload.go): one message per field, its JSON-encoded value;
 *   connectivity, alerts and errors as small PascalCase objects;
 * - the Redis dispatcher's channels (datastore/redis/redis.go, telemetry/producer.go BuildTopicName):
 *   `<namespace>_<record type>_{<VIN>}`, payload the record as above.
 * Only the fields Fleetwire maps are named; a record carries many more, which are ignored.
 */

/** The fields Fleetwire maps (proto enum `Field`). */
export const telemetryFields = [
  'Soc',
  'BatteryLevel',
  'Odometer',
  'Location',
  'GpsHeading',
  'VehicleSpeed',
  'EstBatteryRange',
  'DetailedChargeState',
  'ModuleTempMax',
  'Gear',
] as const;
export type TelemetryField = (typeof telemetryFields)[number];

export const detailedChargeStates = [
  'DetailedChargeStateUnknown',
  'DetailedChargeStateDisconnected',
  'DetailedChargeStateNoPower',
  'DetailedChargeStateStarting',
  'DetailedChargeStateCharging',
  'DetailedChargeStateComplete',
  'DetailedChargeStateStopped',
] as const;
export type DetailedChargeState = (typeof detailedChargeStates)[number];

export const shiftStates = ['ShiftStateUnknown', 'ShiftStateInvalid', 'ShiftStateP', 'ShiftStateR', 'ShiftStateN', 'ShiftStateD', 'ShiftStateSNA'] as const;
export type ShiftState = (typeof shiftStates)[number];

export interface TelemetryLocation {
  latitude: number;
  longitude: number;
}

/**
 * The proto `Value` oneof in protojson: exactly one member is set. Without `prefer_typed`, vehicles send numbers,
 * booleans and even enums as `stringValue`. int64 members (`longValue`) arrive as decimal strings, as protojson
 * writes them; doubles may arrive as "NaN" or "Infinity".
 */
export type TelemetryValue =
  | { stringValue: string }
  | { intValue: number }
  | { longValue: string | number }
  | { floatValue: number | string }
  | { doubleValue: number | string }
  | { booleanValue: boolean }
  | { boolValue: boolean }
  | { locationValue: TelemetryLocation }
  | { detailedChargeStateValue: DetailedChargeState }
  | { shiftStateValue: ShiftState }
  /** The vehicle cannot measure this signal right now. */
  | { invalid: true };

export interface TelemetryDatum {
  key: TelemetryField | (string & {});
  value: TelemetryValue;
}

/** One `Payload`: what one vehicle reported at one moment. */
export interface TelemetryRecord {
  data: TelemetryDatum[];
  /** RFC 3339 (protojson Timestamp), UTC with `Z`; the observed time of every datum in the record. */
  createdAt: string | null;
  vin: string;
  /** True when the vehicle sends again what it sent before (after a lost ack). */
  isResend: boolean;
}

/** Miles (Odometer, ranges) and miles per hour (VehicleSpeed) to kilometres. */
export const kmPerMile = 1.609344;

/**
 * The two fields that can feed `soc_pct` (a connection option picks one). Tesla documents BatteryLevel as "the state
 * of charge of the vehicle, as a percent of total battery capacity" (developer.tesla.com fleet-telemetry
 * available-data); it gives no description of Soc we could confirm.
 */
export const socFields = ['BatteryLevel', 'Soc'] as const;
export type SocField = (typeof socFields)[number];

/** proto `ConnectivityEvent` (protos/vehicle_connectivity.proto), by name as protojson and the MQTT dispatcher write it. */
export const connectivityEvents = ['UNKNOWN', 'CONNECTED', 'DISCONNECTED'] as const;
export type ConnectivityEvent = (typeof connectivityEvents)[number];

/** `VehicleConnectivity` in protojson: a record of type `connectivity` (Redis, Tessie). */
export interface ConnectivityRecord {
  vin: string;
  connectionId: string;
  status: ConnectivityEvent;
  createdAt: string | null;
  networkInterface: string;
}

/** `VehicleAlerts` in protojson: a record of type `alerts`. */
export interface AlertsRecord {
  alerts: { name: string; audiences: string[]; startedAt: string | null; endedAt: string | null }[];
  createdAt: string | null;
  vin: string;
}

/** `VehicleErrors` in protojson: a record of type `errors`. */
export interface ErrorsRecord {
  errors: { createdAt: string | null; name: string; tags: Record<string, string>; body: string }[];
  createdAt: string | null;
  vin: string;
}

/**
 * The payload of an MQTT metric message on `<topic_base>/<VIN>/v/<Field>`: the datum's value JSON-encoded, a string
 * or a number depending on firmware (`prefer_typed`), a location as an object, enums by name, and `null` for a value
 * the vehicle marked invalid. It carries no time.
 */
export type MqttMetricValue = string | number | boolean | null | { latitude: number; longitude: number };

/** On `<topic_base>/<VIN>/connectivity`. `CreatedAt` is RFC 3339 to the second (Go's time.RFC3339). */
export interface MqttConnectivity {
  ConnectionId: string;
  Status: ConnectivityEvent;
  CreatedAt: string;
}

/** On `<topic_base>/<VIN>/alerts/<name>/current` (the newest of that alert; `.../history` holds a list of these). */
export interface MqttAlert {
  StartedAt?: string;
  EndedAt?: string;
  Audiences: string[] | null;
}

/** On `<topic_base>/<VIN>/errors/<name>`. */
export interface MqttError {
  Body: string;
  Tags: Record<string, string>;
  CreatedAt?: string;
}

/** The record types of the Redis channels `<namespace>_<type>_{<VIN>}` (the vehicle's topics, messages/stream_message.go). */
export const redisRecordTypes = ['V', 'connectivity', 'alerts', 'errors'] as const;
export type RedisRecordType = (typeof redisRecordTypes)[number];
