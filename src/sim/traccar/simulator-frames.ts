/**
 * What the Traccar simulator puts on the wire, built from the fleet model (shapes from
 * reference/provider-wire-formats.md §3a), and what each position says in canonical terms, by the simulator's
 * own arithmetic: ground truth must not borrow the adapter's mapping, or a mapping bug would agree with itself.
 *
 * Each shuttle carries a phone running Traccar Client (protocol osmand), as many Traccar fleets do: `batteryLevel`
 * and `charge` are the phone's battery, as OsmAndProtocolDecoder sets them. The vehicle's own state of charge and
 * charging come from a CAN bridge as the extra attributes `evSoc` (percent) and `evCharging` (boolean), which
 * OsmAndProtocolDecoder keeps under their own names; a connection reads them only if its options say so
 * (simulatedEvAttributes).
 */
import type { VehicleIdentity, VehicleState } from '../fleet-model.ts';
import type { ServedReading } from '../ground-truth.ts';
import type { TraccarOptionsInput } from '../../providers/traccar/options.ts';
import type { TraccarDevice, TraccarDeviceStatus, TraccarEvent, TraccarPosition } from '../../providers/traccar/wire.ts';

/** The connection options that read the simulated vehicle's state of charge and charging (the demo sets them). */
export const simulatedEvAttributes = {
  attributes: { soc_pct: { attribute: 'evSoc' }, charging_state: { attribute: 'evCharging' } },
} as const satisfies TraccarOptionsInput;

const hourMs = 3_600_000;
/** A phone drains from 95 % to 25 % over 20 hours of service, then charges back on a cable in 2. */
const phoneCycle = { drainMs: 20 * hourMs, chargeMs: 2 * hourMs, full: 95, low: 25 } as const;

/**
 * The phone's battery at `atMs`, whole percent as Android reports it; each phone is at its own point of the cycle
 * (spread by the device id), so a fleet never drains in step.
 */
export function phoneBattery(deviceId: number, atMs: number): { pct: number; charging: boolean } {
  const { drainMs, chargeMs, full, low } = phoneCycle;
  const cycleMs = drainMs + chargeMs;
  const offsetMs = ((deviceId * 7_919) % 1_000) * (cycleMs / 1_000);
  const t = (((atMs + offsetMs) % cycleMs) + cycleMs) % cycleMs;
  if (t < drainMs) return { pct: Math.round(full - ((full - low) * t) / drainMs), charging: false };
  // Full a little before it leaves the cable, as a charger holds a phone at full: the next drain starts there.
  return { pct: Math.min(full, Math.round(low + ((full - low) * (t - drainMs)) / (chargeMs * 0.9))), charging: true };
}

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
  const phone = phoneBattery(identity.traccarDeviceId, ids.fixTimeMs);
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
      batteryLevel: phone.pct,
      charge: phone.charging,
      odometer: Math.round(state.odometerKm * 1000),
      ignition: state.ignition,
      motion: state.speedKph > 0,
      evSoc: round(state.socPct, 1),
      evCharging: state.chargingState === 'charging',
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

/**
 * The canonical readings one simulated position carries for a connection reading it; `evAttributesMapped`: whether
 * that connection maps `evSoc` and `evCharging` (simulatedEvAttributes), without which it sees no state of charge.
 */
export function servedReadingsOf(position: TraccarPosition, uniqueId: string, account: string, fixTimeMs: number, evAttributesMapped = false): ServedReading[] {
  const served = (signal: ServedReading['signal'], value: unknown): ServedReading => ({
    account,
    externalDeviceId: uniqueId,
    signal,
    value,
    observedAtMs: fixTimeMs,
  });
  const { attributes } = position;
  const readings = [
    served('location', { lat: position.latitude, lon: position.longitude }),
    served('speed_kph', round(position.speed * kphPerKnot, 3)),
    served('heading_deg', position.course),
    served('tracker_battery_pct', attributes.batteryLevel),
    served('odometer_km', round((attributes.odometer ?? 0) / 1000, 3)),
    served('ignition', attributes.ignition),
  ];
  if (evAttributesMapped) {
    readings.push(served('soc_pct', attributes.evSoc), served('charging_state', attributes.evCharging === true ? 'charging' : 'not_charging'));
  }
  return readings;
}
