/**
 * What the Traccar simulator puts on the wire, built from the fleet model (shapes from
 * reference/provider-wire-formats.md §3a), and what each position says in canonical terms, by the simulator's
 * own arithmetic: ground truth must not borrow the adapter's mapping, or a mapping bug would agree with itself.
 */
import type { VehicleIdentity, VehicleState } from '../fleet-model.ts';
import type { ServedReading } from '../ground-truth.ts';
import type { TraccarDevice, TraccarDeviceStatus, TraccarEvent, TraccarPosition } from '../../providers/traccar/wire.ts';

const kphPerKnot = 1.852;

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Traccar's date style: milliseconds and a `+00:00` offset instead of `Z`. */
export function traccarDate(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '+00:00');
}

export function deviceStatus(state: Readonly<VehicleState>): TraccarDeviceStatus {
  return state.phase === 'asleep' ? 'offline' : 'online';
}

export function simulatedPosition(
  identity: VehicleIdentity,
  state: Readonly<VehicleState>,
  ids: { positionId: number; fixTimeMs: number; serverTimeMs: number },
): TraccarPosition {
  return {
    id: ids.positionId,
    deviceId: identity.traccarDeviceId,
    type: null,
    protocol: 'osmand',
    serverTime: traccarDate(ids.serverTimeMs),
    deviceTime: traccarDate(ids.fixTimeMs),
    fixTime: traccarDate(ids.fixTimeMs),
    valid: true,
    latitude: round(state.lat, 6),
    longitude: round(state.lon, 6),
    altitude: 0,
    speed: round(state.speedKph / kphPerKnot, 3),
    course: round(state.headingDeg, 1) % 360,
    address: null,
    accuracy: 0,
    network: null,
    geofenceIds: null,
    attributes: {
      batteryLevel: round(state.socPct, 1),
      odometer: Math.round(state.odometerKm * 1000),
      ignition: state.ignition,
      charge: state.chargingState === 'charging',
      motion: state.speedKph > 0,
    },
  };
}

export function simulatedDevice(identity: VehicleIdentity, status: TraccarDeviceStatus, lastUpdateMs: number, positionId: number): TraccarDevice {
  return {
    id: identity.traccarDeviceId,
    name: identity.name,
    uniqueId: identity.traccarUniqueId,
    status,
    lastUpdate: traccarDate(lastUpdateMs),
    positionId,
    model: identity.kind,
    category: identity.kind === 'bus' ? 'bus' : 'truck',
    disabled: false,
  };
}

export function ignitionEvent(identity: VehicleIdentity, on: boolean, ids: { eventId: number; eventTimeMs: number; positionId: number }): TraccarEvent {
  return {
    id: ids.eventId,
    type: on ? 'ignitionOn' : 'ignitionOff',
    eventTime: traccarDate(ids.eventTimeMs),
    deviceId: identity.traccarDeviceId,
    positionId: ids.positionId,
    geofenceId: 0,
    maintenanceId: 0,
    attributes: {},
  };
}

/** The canonical readings one simulated position carries. */
export function servedReadingsOf(position: TraccarPosition, uniqueId: string, account: string, fixTimeMs: number): ServedReading[] {
  const served = (signal: ServedReading['signal'], value: unknown): ServedReading => ({
    account,
    externalDeviceId: uniqueId,
    signal,
    value,
    observedAtMs: fixTimeMs,
  });
  const { attributes } = position;
  return [
    served('location', { lat: position.latitude, lon: position.longitude }),
    served('speed_kph', round(position.speed * kphPerKnot, 3)),
    served('heading_deg', position.course),
    served('soc_pct', attributes.batteryLevel),
    served('odometer_km', round((attributes.odometer ?? 0) / 1000, 3)),
    served('ignition', attributes.ignition),
    served('charging_state', attributes.charge ? 'charging' : 'not_charging'),
  ];
}
