/**
 * Traccar's websocket and REST wire types, as described in reference/provider-wire-formats.md §3a (from
 * traccar/traccar's model Position, Device and Event, and api/AsyncSocket). Only the fields Fleetwire reads or the
 * simulator writes are typed; Traccar sends more. Every field is what the server may send, not what we trust:
 * the mapping checks each one before use.
 */

/** Dates are ISO 8601 with an offset (Traccar's Jackson writes `+00:00`, not `Z`). */
export type TraccarDate = string;

/**
 * Standard position attributes (traccar/traccar model/Position.java, whose comments give the units). Any other key
 * a decoder or a computed attribute sets (Teltonika's `io<id>`, OsmAnd's extra query parameters) is allowed too.
 */
export interface TraccarPositionAttributes {
  /**
   * Percent of the tracking device's own battery: OsmAndProtocolDecoder sets it from the Traccar Client phone
   * (`batt`, or `battery.level` x 100), TeltonikaProtocolDecoder from io113 (the device's internal battery).
   */
  batteryLevel?: number;
  /** Metres (the device's or the vehicle's own counter). */
  odometer?: number;
  /** Metres, computed by Traccar from GPS since the device was added. */
  totalDistance?: number;
  ignition?: boolean;
  /** The tracking device's own battery is charging (OsmAnd: the phone's `charge`), not the vehicle. */
  charge?: boolean;
  motion?: boolean;
  [key: string]: unknown;
}

export interface TraccarPosition {
  id: number;
  deviceId: number;
  type?: string | null;
  protocol?: string | null;
  serverTime?: TraccarDate | null;
  deviceTime?: TraccarDate | null;
  /** When the GPS fix was taken: the observed time of everything in the position. */
  fixTime: TraccarDate;
  /** False when the device had no GPS fix: latitude, longitude, speed and course are then stale. */
  valid?: boolean;
  latitude: number;
  longitude: number;
  /** Metres. */
  altitude?: number;
  /** Knots. */
  speed: number;
  /** Degrees clockwise from north. */
  course: number;
  address?: string | null;
  accuracy?: number;
  network?: unknown;
  geofenceIds?: number[] | null;
  attributes: TraccarPositionAttributes;
}

export type TraccarDeviceStatus = 'online' | 'offline' | 'unknown';

export interface TraccarDevice {
  /** Traccar's own numeric id; positions and events refer to devices by it. */
  id: number;
  name: string;
  /** The identifier the tracker reports (IMEI or similar): Fleetwire's external device id. */
  uniqueId: string;
  status: TraccarDeviceStatus;
  lastUpdate: TraccarDate | null;
  positionId: number;
  model?: string | null;
  category?: string | null;
  disabled?: boolean;
}

export type TraccarEventType = 'ignitionOn' | 'ignitionOff' | 'deviceOnline' | 'deviceOffline' | 'deviceMoving' | (string & {});

export interface TraccarEvent {
  id: number;
  type: TraccarEventType;
  eventTime: TraccarDate;
  deviceId: number;
  positionId: number;
  geofenceId: number;
  maintenanceId: number;
  attributes: Record<string, unknown>;
}

/**
 * One websocket text frame: an object with one key, or `{}` as a keepalive. AsyncSocket sends the latest position
 * of every device in the first frame, then one entity per frame (`List.of(position)`, `List.of(device)`...).
 */
export type TraccarFrame =
  | { positions: TraccarPosition[] }
  | { devices: TraccarDevice[] }
  | { events: TraccarEvent[] }
  | Record<string, never>;
