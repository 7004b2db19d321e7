/**
 * Tesla Fleet Telemetry records in their JSON form, as described in reference/provider-wire-formats.md §3b (from
 * teslamotors/fleet-telemetry protos/vehicle_data.proto and telemetry/record.go: protojson, lowerCamel names,
 * enums as names). Only the fields Fleetwire maps are named; a record carries many more, which are ignored.
 */

/** The fields Fleetwire maps (proto enum `Field`). */
export const telemetryFields = [
  'Soc',
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
