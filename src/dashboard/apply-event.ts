/**
 * What each event of the stream changes in the dashboard's in-memory view (the event catalogue in docs/API.md).
 * A signal moves only to a value observed at or after the one held, so an event applied twice, or on top of a
 * list that already holds it, changes nothing: the dashboard applies the events that arrive while it reloads after
 * the reload, and a resumed stream may repeat what a reload already showed. Malformed data changes nothing.
 */
import { vehicleStatuses, type ConnectionHealth, type FleetEvent, type Reason, type Vehicle, type VehicleStatus } from './api-types.ts';

export type EventEffect =
  | { kind: 'vehicle'; vehicleId: string; signals: string[]; freshness: boolean }
  | { kind: 'connection'; connectionId: string; known: boolean }
  /** The workspace's poller changed: what shows its migration asks again (nothing of it is held here). */
  | { kind: 'cutover'; mode: string }
  | null;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const timeOf = (iso: string | null | undefined): number => (typeof iso === 'string' ? Date.parse(iso) : Number.NaN);

function later(held: string | null, candidate: string): string {
  return held !== null && timeOf(held) >= timeOf(candidate) ? held : candidate;
}

function reasonOf(value: unknown): Reason | null {
  return isRecord(value) && typeof value.code === 'string' && typeof value.detail === 'string' ? { code: value.code, detail: value.detail } : null;
}

/** Moves one signal to a value observed at or after the one held; answers whether anything changed. */
function applySignal(vehicle: Vehicle, signal: string, value: unknown, observedAt: unknown): boolean {
  if (typeof observedAt !== 'string' || Number.isNaN(timeOf(observedAt))) return false;
  const held = vehicle.signals[signal];
  if (held && timeOf(observedAt) < timeOf(held.observedAt)) return false;
  if (held && timeOf(observedAt) === timeOf(held.observedAt) && JSON.stringify(held.value) === JSON.stringify(value)) return false;
  vehicle.signals[signal] = { value, observedAt };
  vehicle.lastObservedAt = later(vehicle.lastObservedAt, observedAt);
  // No event tells the sync time, but a reading was confirmed no earlier than it was observed: this lower bound
  // never shows a vehicle as more recently synced than it was, and the next load brings the exact time.
  vehicle.lastSyncedAt = later(vehicle.lastSyncedAt, observedAt);
  return true;
}

function applyVehicleEvent(vehicle: Vehicle, event: FleetEvent): EventEffect {
  const { data } = event;
  const changed: string[] = [];
  let freshness = false;
  switch (event.type) {
    case 'fleetwire.vehicle.state.changed':
      if (!isRecord(data.signals)) return null;
      for (const [signal, state] of Object.entries(data.signals)) {
        if (isRecord(state) && applySignal(vehicle, signal, state.value, state.observedAt)) changed.push(signal);
      }
      break;
    case 'fleetwire.vehicle.charging.started':
    case 'fleetwire.vehicle.charging.stopped':
      if (typeof data.chargingState === 'string' && applySignal(vehicle, 'charging_state', data.chargingState, data.observedAt)) changed.push('charging_state');
      break;
    case 'fleetwire.vehicle.freshness.changed': {
      const status = data.status as VehicleStatus;
      if (!vehicleStatuses.includes(status)) return null;
      const reason = reasonOf(data.reason);
      const before = vehicle.freshness;
      if (before.status !== status || before.reason?.code !== reason?.code || before.reason?.detail !== reason?.detail) {
        vehicle.freshness = { ...before, status, reason };
        freshness = true;
      }
      break;
    }
    default:
      return null;
  }
  return changed.length > 0 || freshness ? { kind: 'vehicle', vehicleId: vehicle.id, signals: changed, freshness } : null;
}

function applyConnectionEvent(connections: readonly ConnectionHealth[], data: Record<string, unknown>): EventEffect {
  if (typeof data.connectionId !== 'string' || typeof data.status !== 'string') return null;
  const connection = connections.find((c) => c.id === data.connectionId);
  if (!connection) return { kind: 'connection', connectionId: data.connectionId, known: false };
  connection.status = data.status;
  if (typeof data.detail === 'string') connection.detail = data.detail;
  if (typeof data.label === 'string') connection.label = data.label;
  const error = data.lastError;
  if (error === null) connection.lastError = null;
  else if (isRecord(error) && typeof error.class === 'string' && typeof error.message === 'string') {
    connection.lastError = { class: error.class, message: error.message, at: typeof error.at === 'string' ? error.at : null };
  }
  return { kind: 'connection', connectionId: connection.id, known: true };
}

/** Applies one event to the vehicles and connections held; answers what it changed (null: nothing this view shows). */
export function applyEvent(vehicles: ReadonlyMap<string, Vehicle>, connections: readonly ConnectionHealth[], event: FleetEvent): EventEffect {
  if (event.type === 'fleetwire.connection.health.changed') return applyConnectionEvent(connections, event.data);
  if (event.type === 'fleetwire.workspace.cutover.changed') return typeof event.data.mode === 'string' ? { kind: 'cutover', mode: event.data.mode } : null;
  const vehicle = typeof event.data.vehicleId === 'string' ? vehicles.get(event.data.vehicleId) : undefined;
  // A vehicle registered after the last load: the next load brings its row.
  if (!vehicle) return null;
  return applyVehicleEvent(vehicle, event);
}
