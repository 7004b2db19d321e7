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
  freshness: {
    status: VehicleStatus;
    syncAgeSeconds: number | null;
    observedAgeSeconds: number | null;
    reason: Reason | null;
    /** Why a vehicle that is not fresh is behind, from the closed set of docs/API.md ("Vehicle status reasons"). */
    statusReason?: StatusReason | null;
  };
}

/** A vehicle's status reason: `code` from a closed set (scheduler_silent, vehicle_asleep, ...). */
export interface StatusReason {
  code: string;
  detail: string;
  connectionId: string | null;
  errorClass: string | null;
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
  /** `legacy_poller` while the workspace's cutover is legacy: `lastSuccessAt` is then its last accepted update. */
  owner?: 'core' | 'legacy_poller';
  /** A stream connection's sockets, open of needed (status `degraded` when some are open). */
  sockets?: { connected: number; expected: number } | null;
  lastScheduledAt?: string | null;
}

export interface Health {
  name: string;
  status: 'ok' | 'degraded' | 'failing' | 'disabled';
  reasons: Reason[];
  freshness: { thresholdSeconds: number; counts: Record<VehicleStatus, number>; freshRatio: number | null; byReason?: Partial<Record<string, number>> };
  scheduler?: { status: 'ok' | 'scheduler_silent' | 'not_used' | 'disabled'; lastScheduledAt: string | null; silentAfterSeconds: number };
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

/** `GET /v1/workspaces/{ws}`, as far as the dashboard reads it: the upper SoC threshold is the charge target. */
export interface Workspace {
  id: string;
  name: string;
  policy: {
    enabled: boolean;
    pollIntervalSeconds: number;
    freshnessThresholdSeconds: number;
    silentAfterSeconds: number;
    retentionDays: number;
    socThresholdsPct: number[];
    eventRetentionDays: number;
    cutoverGate: { windowHours: number; minCoveragePct: number; minAgreementPct: number; matchSeconds: number };
  };
  cutover: { mode: 'legacy' | 'shadow' | 'core'; changedAt: string };
}

/** `GET /v1/workspaces/{ws}/api-keys`: never the key itself, which only the answer that made it holds. */
export interface ApiKey {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** `GET /v1/providers` (admin): what a connection form offers. */
export interface Provider {
  name: string;
  title: string;
  transports: ('poll' | 'stream')[];
  baseUrl: { required: boolean; default: string | null; schemes: string[] };
  credentials: { fields: string[]; required: string[] };
  options: string[];
}

/** `GET /v1/health` (admin): every workspace's health, worst first. */
export interface FleetHealth {
  status: 'ok' | 'degraded' | 'failing';
  counts: Record<'ok' | 'degraded' | 'failing' | 'disabled', number>;
  items: (Health & { workspaceId: string })[];
}

/** `GET /v1/workspaces/{ws}/connections`: never the credentials. */
export interface Connection {
  id: string;
  provider: string;
  transport: string;
  label: string;
  enabled: boolean;
  baseUrl: string;
  options: Record<string, unknown>;
}

/** `GET /v1/workspaces/{ws}/discovered-devices` (the discovered-devices contract). */
export interface DiscoveredDevice {
  connectionId: string;
  provider: string;
  externalId: string;
  status: 'pending' | 'ignored' | 'bound';
  firstSeenAt: string;
  lastSeenAt: string;
  readingCount: number;
  sample: Record<string, { value: unknown; observedAt: string } | undefined>;
  vehicleId: string | null;
}

/** One bucket of a downsampled history (`history?bucket=`). */
export interface HistoryBucket {
  signal: string;
  bucketStart: string;
  bucketEnd: string;
  count: number;
  firstObservedAt: string;
  lastObservedAt: string;
  min: number | null;
  max: number | null;
  avg: number | null;
  last: unknown;
}

/** `GET .../charging-sessions`: what a session tells of the battery's size. */
export interface ChargingSession {
  startedAt: string;
  endedAt: string | null;
  startSocPct: number | null;
  endSocPct: number | null;
  energyKwh: number | null;
}

/** What parity counts, for the whole window, a signal or a vehicle (src/core/cutover/parity.ts says what each is). */
export interface ParityFigures {
  legacyReadings: number;
  coreReadings: number;
  pairs: number;
  agreed: number;
  missingInCore: number;
  missingInLegacy: number;
  coveragePct: number | null;
  agreementPct: number | null;
}

export interface ParitySide {
  meanLagSeconds: number | null;
  newestObservedAt: string | null;
}

export interface ParityDifference {
  vehicleId: string;
  vehicleName: string;
  signal: string;
  kind: 'disagreement' | 'missing_in_core' | 'missing_in_legacy';
  observedAt: string;
  core?: unknown;
  legacy?: unknown;
}

/** `GET /v1/workspaces/{ws}/cutover/parity?window=24h`: the two pollers compared over the last hours (the current one included). */
export interface ParityReport {
  workspaceId: string;
  window: { hours: number; from: string; to: string };
  summary: ParityFigures & { freshness: { core: ParitySide; legacy: ParitySide } };
  bySignal: (ParityFigures & { signal: string })[];
  worstVehicles: (ParityFigures & { vehicleId: string; vehicleName: string; worstSignal: string })[];
  differences: ParityDifference[];
  gate: { minCoveragePct: number; minAgreementPct: number; met: boolean; reasons: string[] };
}

/** `GET /v1/workspaces/{ws}/cutover/transitions`, newest first; the parity a change was judged on is not read. */
export interface CutoverTransition {
  id: string;
  at: string;
  actor: string;
  from: Workspace['cutover']['mode'];
  to: Workspace['cutover']['mode'];
  reason: string | null;
  forced: boolean;
}
