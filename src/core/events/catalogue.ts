/**
 * The events Fleetwire tells its consumers (DESIGN §10), as CloudEvents 1.0 in JSON: `source` is the workspace,
 * `subject` the vehicle or connection, `sequence` (the CloudEvents sequence extension, a lexicographically ordered
 * string) counts up per subject, and `data` is the event's own payload below.
 */
import type { UpdateSource } from '../../canonical/update.ts';

export const eventTypes = [
  'fleetwire.vehicle.state.changed',
  'fleetwire.vehicle.charging.started',
  'fleetwire.vehicle.charging.stopped',
  'fleetwire.vehicle.soc.crossed',
  'fleetwire.vehicle.freshness.changed',
  'fleetwire.connection.health.changed',
  'fleetwire.workspace.cutover.changed',
] as const;

export type EventType = (typeof eventTypes)[number];

export function isEventType(type: string): type is EventType {
  return (eventTypes as readonly string[]).includes(type);
}

/** One signal's new snapshot value in a state change. */
export interface ChangedSignal {
  value: unknown;
  observedAt: string;
  source: UpdateSource;
  provider: string;
}

export interface VehicleStateChanged {
  vehicleId: string;
  /** The signals whose snapshot value this unit of work moved, with their new values. */
  signals: Record<string, ChangedSignal>;
}

export interface VehicleChargingChanged {
  vehicleId: string;
  chargingState: string;
  previousChargingState: string | null;
  /** The vehicle's state of charge at that moment, as far as it was known; null when it never reported one. */
  socPct: number | null;
  observedAt: string;
}

export interface VehicleSocCrossed {
  vehicleId: string;
  thresholdPct: number;
  direction: 'up' | 'down';
  socPct: number;
  previousSocPct: number;
  observedAt: string;
}

/** An event before it is stored: its log position is given when it is written, and its sequence too unless it has one. */
export interface EventDraft {
  id: string;
  workspaceId: string;
  /** `vehicles/<id>`, `connections/<id>` or `workspace`. */
  subject: string;
  type: EventType;
  time: string;
  data: Record<string, unknown>;
  /** Its subject's sequence, when the writer holds the subject's counter and has advanced it (`writeEvents`). */
  sequence?: number;
}

/** A stored event, as the log holds it. */
export interface StoredEvent {
  position: number;
  id: string;
  workspaceId: string;
  subject: string;
  type: EventType;
  sequence: number;
  time: string;
  data: Record<string, unknown>;
  /** When the unit of work that caused it ran (its transaction's time). */
  createdAtMs: number;
}

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: EventType;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  sequence: string;
  data: Record<string, unknown>;
}

/** Digits of a rendered sequence: enough for any bigint, so string order is number order. */
const sequenceDigits = 19;

export function toCloudEvent(event: StoredEvent): CloudEvent {
  return {
    specversion: '1.0',
    id: event.id,
    source: `/workspaces/${event.workspaceId}`,
    type: event.type,
    subject: event.subject,
    time: event.time,
    datacontenttype: 'application/json',
    sequence: String(event.sequence).padStart(sequenceDigits, '0'),
    data: event.data,
  };
}

export const vehicleSubject = (vehicleId: string) => `vehicles/${vehicleId}`;
export const connectionSubject = (connectionId: string) => `connections/${connectionId}`;
