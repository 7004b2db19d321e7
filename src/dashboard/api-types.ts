/** The API answers and events the dashboard reads (docs/API.md), as far as it reads them. */

export type VehicleStatus = 'fresh' | 'stale' | 'silent' | 'never';

export const vehicleStatuses: readonly VehicleStatus[] = ['fresh', 'stale', 'silent', 'never'];

export interface SignalState {
  value: unknown;
  observedAt: string;
}

export interface Reason {
  code: string;
  detail: string;
}

export interface Vehicle {
  id: string;
  name: string;
  vin: string | null;
  active: boolean;
  lastSyncedAt: string | null;
  lastObservedAt: string | null;
  signals: Record<string, SignalState | undefined>;
  freshness: { status: VehicleStatus; syncAgeSeconds: number | null; observedAgeSeconds: number | null; reason: Reason | null };
}

export interface ConnectionHealth {
  id: string;
  provider: string;
  transport: string;
  label: string;
  status: string;
  detail: string;
  lastSuccessAt: string | null;
  lastError: { class: string; message: string; at: string | null } | null;
  nextAttemptAt: string | null;
}

export interface Health {
  name: string;
  status: 'ok' | 'degraded' | 'failing' | 'disabled';
  reasons: Reason[];
  freshness: { thresholdSeconds: number; counts: Record<VehicleStatus, number>; freshRatio: number | null };
  connections: ConnectionHealth[];
}

export interface Rejection {
  rejectedAt: string;
  reason: string;
  detail: string;
  externalDeviceId: string | null;
  signal: string | null;
}

/** A CloudEvent from the event stream: its `data` is checked field by field where it is used. */
export interface FleetEvent {
  type: string;
  subject: string;
  time: string;
  data: Record<string, unknown>;
}
