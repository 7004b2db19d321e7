/**
 * Freshness and health rules (DESIGN §8), as functions of stored state and the clock.
 *
 * A vehicle has two clocks: `lastSyncedAt`, the last time the pipeline confirmed its state with its provider
 * (an ingested update, a successful poll of its connection, a live heartbeating stream), and `lastObservedAt`,
 * the newest reading's observed time. Staleness is computed when asked, never stored, so it shows the moment a
 * threshold passes.
 */

export const vehicleStatuses = ['fresh', 'stale', 'silent', 'never'] as const;
export type VehicleStatus = (typeof vehicleStatuses)[number];

/**
 * The confirmations of a binding's connection that count for its vehicle: those made after the binding, unless the
 * connection's stream process reports the device's own socket down (one socket per VIN): a connection with some
 * sockets open confirms only the devices on them.
 */
const confirmationsOfBinding = `JOIN connection_sync_marks m
      ON m.workspace_id = d.workspace_id AND m.connection_id = d.connection_id AND m.confirmed_at >= d.created_at
     AND NOT EXISTS (SELECT 1 FROM stream_connection_states dd
                      WHERE dd.workspace_id = d.workspace_id AND dd.connection_id = d.connection_id AND dd.devices_down ? d.external_id)`;

/**
 * A vehicle's `lastSyncedAt`, derived when it is read, for a query over a vehicles row `v`: the later of its own
 * last ingest (written by the ingest unit of work, which holds the vehicle's lock) and the newest confirmation of
 * any connection it is bound to that came after the binding (a successful poll; a stream connected with a live
 * heartbeat). Polls and stream reports write one row per connection, never one per vehicle.
 *
 * Joined as `sy.synced_at`, for `vehicleStatusSql` and the read side. `vehicleSyncJoin` looks a vehicle's
 * confirmations up per row (for a page of vehicles); over a whole fleet, `vehicleConfirmationsCte` with
 * `vehicleSyncFromConfirmations` aggregates them once for every vehicle (a hash join, not 10,000 lookups). The
 * lookup is evaluated once a row (`OFFSET 0` keeps the planner from copying it into every use of `sy.synced_at`).
 */
export const vehicleSyncJoin = `CROSS JOIN LATERAL (SELECT GREATEST(v.last_synced_at,
    (SELECT max(m.confirmed_at) FROM device_bindings d ${confirmationsOfBinding}
      WHERE d.workspace_id = v.workspace_id AND d.vehicle_id = v.id)) AS synced_at OFFSET 0) sy`;

/** A CTE `confirmations` of every vehicle's newest connection confirmation; `workspaces` filters `d.workspace_id`. */
export function vehicleConfirmationsCte(workspaces: string): string {
  return `confirmations AS (
    SELECT d.workspace_id, d.vehicle_id, max(m.confirmed_at) AS confirmed_at
      FROM device_bindings d ${confirmationsOfBinding}
     WHERE ${workspaces}
     GROUP BY d.workspace_id, d.vehicle_id)`;
}

export const vehicleSyncFromConfirmations = `LEFT JOIN confirmations cf ON cf.workspace_id = v.workspace_id AND cf.vehicle_id = v.id
    CROSS JOIN LATERAL (SELECT GREATEST(v.last_synced_at, cf.confirmed_at) AS synced_at) sy`;

/**
 * The vehicle freshness rule, in SQL over a vehicles row `v` (with `vehicleSyncJoin`), a policy row `p` and the
 * clock in parameter `now`, so that filtering by status happens in the database. never: no reading yet. stale:
 * not synced for longer than the freshness threshold (the pipeline or the provider is failing: this breaks the
 * freshness goal). silent: synced, but nothing new observed for longer than the silence threshold (parked, asleep:
 * not the pipeline's fault). fresh: otherwise. An age exactly at a threshold is still within it.
 */
export function vehicleStatusSql(now: string): string {
  return `CASE
    WHEN v.last_observed_at IS NULL THEN 'never'
    WHEN sy.synced_at IS NULL OR sy.synced_at < ${now} - make_interval(secs => p.freshness_threshold_seconds) THEN 'stale'
    WHEN v.last_observed_at < ${now} - make_interval(secs => p.silent_after_seconds) THEN 'silent'
    ELSE 'fresh' END`;
}

/**
 * `degraded`: a stream connection with some of its sockets open (counts in `sockets`); `scheduler_silent`: a poll
 * connection no scheduled event has reached for two poll intervals, so nothing starts its polls;
 * `legacy_poller_behind`: a poll connection of a workspace in `legacy` cutover whose legacy poller has had no update
 * accepted within the freshness threshold.
 */
export const connectionStatuses = [
  'ok',
  'degraded',
  'rate_limited',
  'failing',
  'auth_failed',
  'credentials_unreadable',
  'disconnected',
  'scheduler_silent',
  'legacy_poller_behind',
  'disabled',
] as const;
export type ConnectionStatus = (typeof connectionStatuses)[number];

/** A poll connection fails after this many failed polls in a row. */
export const failingAfterFailures = 3;
/** A stream connection whose holder has not reported for this long has no live stream process. */
export const streamReportStaleSeconds = 60;

/** When a workspace's scheduler counts as silent: no scheduled event for this many poll intervals. */
export const schedulerSilentAfterIntervals = 2;

export interface SchedulerState {
  /** The last scheduled event that reached the workspace, or null if none ever did. */
  lastEventAt: number | null;
  silent: boolean;
  silentAfterSeconds: number;
}

/**
 * Whether the scheduler has gone silent for a workspace: no scheduled event for two poll intervals, counted from the
 * last event or, when it is later, from `since` (the workspace's creation or its last policy or cutover change), so a
 * workspace just created or turned on is not called silent before a scheduler could have reached it.
 */
export function schedulerState(lastEventAt: number | null, since: number, pollIntervalSeconds: number, nowMs: number): SchedulerState {
  const silentAfterSeconds = pollIntervalSeconds * schedulerSilentAfterIntervals;
  const from = Math.max(lastEventAt ?? Number.NEGATIVE_INFINITY, since);
  return { lastEventAt, silent: nowMs - from > silentAfterSeconds * 1000, silentAfterSeconds };
}

export interface ConnectionFacts {
  enabled: boolean;
  /** False when the workspace's telematics is off: its connections are then `disabled`, whatever their own flag. */
  workspaceEnabled?: boolean;
  /** Who polls a poll connection: core, or the legacy poller while the workspace's cutover is `legacy`. */
  owner?: 'core' | 'legacy_poller';
  /** Cutover `shadow`: the legacy poller owns it, and core polls beside it for parity (its own poll health is told too). */
  shadow?: boolean;
  /** For a legacy-owned connection: when an update of the legacy poller was last accepted, or null. */
  legacyLastAcceptedAt?: number | null;
  freshnessThresholdSeconds?: number;
  /** The workspace's scheduler, for a core-owned poll connection. */
  scheduler?: SchedulerState;
  transport: 'poll' | 'stream';
  /** When the stored credentials were found unreadable under this deployment's key, or null. */
  credentialsUnreadableAt: number | null;
  poll: {
    lastSuccessAt: number | null;
    lastErrorAt: number | null;
    lastErrorClass: string | null;
    lastErrorMessage: string | null;
    consecutiveFailures: number;
    nextPollAt: number | null;
    rateLimitedUntil: number | null;
    authFailedAt: number | null;
    lastAttemptAt: number | null;
  } | null;
  stream: {
    connected: boolean;
    lastMessageAt: number | null;
    lastErrorClass: string | null;
    lastError: string | null;
    lastErrorAt: number | null;
    nextReconnectAt: number | null;
    reportedAt: number;
    sockets?: number;
    socketsOpen?: number;
  } | null;
  pollIntervalSeconds: number;
}

export interface ConnectionHealth {
  status: ConnectionStatus;
  lastSuccessAt: number | null;
  lastError: { class: string; message: string; at: number | null } | null;
  /** When the next poll (or reconnect) is due. */
  nextAttemptAt: number | null;
  detail: string;
  /** Who polls it: core, or the legacy poller (cutover `legacy`; `lastSuccessAt` is then its last accepted update). */
  owner: 'core' | 'legacy_poller';
  /** A stream connection's sockets: how many are open of those it needs (one per VIN for some providers). */
  sockets: { connected: number; expected: number } | null;
  /** A core-owned poll connection's last scheduled event (of its workspace). */
  lastScheduledAt: number | null;
}

const unreadableDetail =
  "the stored credentials cannot be decrypted with this deployment's FLEETWIRE_SECRET_KEY; enter them again (PATCH the connection's credentials)";

const isoAt = (ms: number) => new Date(ms).toISOString();

export function connectionHealth(c: ConnectionFacts, nowMs: number): ConnectionHealth {
  const owner = c.transport === 'poll' ? (c.owner ?? 'core') : 'core';
  const scheduler = c.transport === 'poll' && owner === 'core' ? c.scheduler : undefined;
  const extra = {
    owner,
    sockets: c.transport === 'stream' && c.stream?.sockets !== undefined ? { connected: c.stream.socketsOpen ?? 0, expected: c.stream.sockets } : null,
    lastScheduledAt: scheduler?.lastEventAt ?? null,
  };
  return { ...connectionState(c, owner, scheduler, nowMs), ...extra };
}

function connectionState(
  c: ConnectionFacts,
  owner: 'core' | 'legacy_poller',
  scheduler: SchedulerState | undefined,
  nowMs: number,
): Omit<ConnectionHealth, 'owner' | 'sockets' | 'lastScheduledAt'> {
  if (c.workspaceEnabled === false) {
    return { status: 'disabled', lastSuccessAt: null, lastError: null, nextAttemptAt: null, detail: "the workspace's telematics is disabled" };
  }
  if (c.enabled && c.credentialsUnreadableAt !== null) {
    return { status: 'credentials_unreadable', lastSuccessAt: null, lastError: { class: 'credentials_unreadable', message: unreadableDetail, at: c.credentialsUnreadableAt }, nextAttemptAt: null, detail: unreadableDetail };
  }
  if (c.transport === 'poll') {
    const p = c.poll;
    const lastError = p?.lastErrorClass ? { class: p.lastErrorClass, message: p.lastErrorMessage ?? '', at: p.lastErrorAt } : null;
    const base = { lastSuccessAt: p?.lastSuccessAt ?? null, lastError };
    const scheduled = p?.lastAttemptAt ? p.lastAttemptAt + c.pollIntervalSeconds * 1000 : null;
    if (!c.enabled) return { ...base, status: 'disabled', nextAttemptAt: null, detail: 'the connection is disabled' };
    if (owner === 'legacy_poller') {
      // Core does not poll it: what its health can say is how current the legacy poller keeps it.
      const last = c.legacyLastAcceptedAt ?? null;
      const behind = last === null || nowMs - last > (c.freshnessThresholdSeconds ?? 300) * 1000;
      const said = last === null ? 'no update of it has been accepted yet' : `its last update was accepted at ${isoAt(last)}`;
      const beside = c.shadow ? connectionState(c, 'core', scheduler, nowMs) : undefined;
      return {
        lastSuccessAt: last,
        lastError: beside?.lastError ?? null,
        nextAttemptAt: beside?.nextAttemptAt ?? null,
        status: behind ? 'legacy_poller_behind' : 'ok',
        detail: beside
          ? `owned by the legacy poller (cutover shadow); ${said}; core polls beside it for parity: ${beside.status}, ${beside.detail}`
          : `owned by the legacy poller (cutover legacy); ${said}`,
      };
    }
    if (p?.authFailedAt) {
      return { ...base, status: 'auth_failed', nextAttemptAt: null, detail: 'the provider refused the credentials; polling stopped until they change' };
    }
    if (scheduler?.silent) {
      const since = scheduler.lastEventAt === null ? 'no scheduled event has ever arrived' : `no scheduled event since ${isoAt(scheduler.lastEventAt)}`;
      return { ...base, status: 'scheduler_silent', nextAttemptAt: null, detail: `${since} (over ${scheduler.silentAfterSeconds} s, two poll intervals): nothing starts its polls` };
    }
    if (p?.rateLimitedUntil && p.rateLimitedUntil > nowMs) {
      return { ...base, status: 'rate_limited', nextAttemptAt: p.rateLimitedUntil, detail: 'the provider is rate limiting; waiting out Retry-After' };
    }
    if (p && p.consecutiveFailures >= failingAfterFailures) {
      return {
        ...base,
        status: 'failing',
        nextAttemptAt: p.nextPollAt ?? scheduled,
        detail: `${p.consecutiveFailures} polls in a row failed${lastError ? ` (last: ${lastError.class})` : ''}`,
      };
    }
    return { ...base, status: 'ok', nextAttemptAt: p?.nextPollAt ?? scheduled, detail: p?.lastSuccessAt ? 'polling' : 'not polled yet' };
  }
  const s = c.stream;
  const lastError = s?.lastErrorClass ? { class: s.lastErrorClass, message: s.lastError ?? '', at: s.lastErrorAt } : null;
  const base = { lastSuccessAt: s?.lastMessageAt ?? null, lastError };
  if (!c.enabled) return { ...base, status: 'disabled', nextAttemptAt: null, detail: 'the connection is disabled' };
  if (!s || nowMs - s.reportedAt > streamReportStaleSeconds * 1000) {
    return { ...base, status: 'disconnected', nextAttemptAt: null, detail: 'no stream process has reported on this connection lately' };
  }
  if (s.connected) return { ...base, status: 'ok', nextAttemptAt: null, detail: 'connected' };
  // Some sockets open (one per VIN): the refused or dropped ones are their vehicles' trouble, not the connection's.
  if ((s.socketsOpen ?? 0) > 0) {
    const down = (s.sockets ?? 0) - (s.socketsOpen ?? 0);
    return {
      ...base,
      status: 'degraded',
      nextAttemptAt: s.nextReconnectAt,
      detail: `${s.socketsOpen} of ${s.sockets} sockets connected; ${down} reconnecting${lastError ? ` (last: ${lastError.class})` : ''}`,
    };
  }
  if (s.lastErrorClass === 'auth') {
    return { ...base, status: 'auth_failed', nextAttemptAt: s.nextReconnectAt, detail: 'the provider refused the credentials' };
  }
  if (s.lastErrorClass === 'rate_limited') {
    return { ...base, status: 'rate_limited', nextAttemptAt: s.nextReconnectAt, detail: 'the provider is rate limiting the connection' };
  }
  return { ...base, status: 'disconnected', nextAttemptAt: s.nextReconnectAt, detail: 'not connected; reconnecting' };
}

/** `disabled`: an operator turned the workspace's telematics off; nothing of it is wrong, and nothing of it runs. */
export const workspaceStatuses = ['ok', 'degraded', 'failing', 'disabled'] as const;
export type WorkspaceStatus = (typeof workspaceStatuses)[number];

export interface HealthReason {
  code: string;
  detail: string;
}

export interface WorkspaceFacts {
  enabled: boolean;
  counts: Record<VehicleStatus, number>;
  connections: { label: string; status: ConnectionStatus; detail: string }[];
  /** The workspace's scheduler, when core polls it (cutover core, an enabled poll connection); absent otherwise. */
  scheduler?: SchedulerState | null;
}

/**
 * The share of reporting vehicles that meet the freshness goal: fresh or silent (synced within the threshold);
 * null when no vehicle has reported yet.
 */
export function freshRatio(counts: Record<VehicleStatus, number>): number | null {
  const reporting = counts.fresh + counts.silent + counts.stale;
  return reporting === 0 ? null : (counts.fresh + counts.silent) / reporting;
}

/**
 * Rolls vehicle freshness and connection health up: disabled when its telematics is off (its vehicles going stale
 * then says nothing); failing when most reporting vehicles are stale or every connection is down; degraded when
 * anything is wrong; ok otherwise. Every reason is spelled out.
 */
export function workspaceHealth(facts: WorkspaceFacts): { status: WorkspaceStatus; reasons: HealthReason[] } {
  if (!facts.enabled) {
    return {
      status: 'disabled',
      reasons: [{ code: 'telematics_disabled', detail: 'telematics is disabled for this workspace: nothing is polled, streamed or accepted' }],
    };
  }
  const failing: HealthReason[] = [];
  const degraded: HealthReason[] = [];
  const { counts } = facts;
  const live = facts.connections.filter((c) => c.status !== 'disabled');
  if (live.length === 0) degraded.push({ code: 'no_connections', detail: 'the workspace has no enabled provider connection' });
  const scheduler = facts.scheduler;
  if (scheduler?.silent) {
    const since = scheduler.lastEventAt === null ? 'no scheduled event has ever arrived' : `the last scheduled event arrived at ${isoAt(scheduler.lastEventAt)}`;
    degraded.push({ code: 'scheduler_silent', detail: `${since}, over ${scheduler.silentAfterSeconds} s (two poll intervals) ago: nothing starts the workspace's polls` });
  }
  for (const { label, status, detail } of live) {
    if (status === 'ok') continue;
    // The workspace's own reason says it once for all its poll connections.
    if (status === 'scheduler_silent' && scheduler?.silent) continue;
    degraded.push({ code: `connection_${status}`, detail: `${label}: ${detail}` });
  }
  const down = live.filter((c) => ['failing', 'auth_failed', 'credentials_unreadable', 'disconnected', 'scheduler_silent', 'legacy_poller_behind'].includes(c.status));
  if (live.length > 0 && down.length === live.length) failing.push({ code: 'all_connections_down', detail: 'no provider connection of the workspace is working' });
  const reporting = counts.fresh + counts.silent + counts.stale;
  if (counts.stale > 0) {
    const reason = {
      code: 'vehicles_stale',
      detail: `${counts.stale} of ${reporting} reporting vehicle${reporting === 1 ? ' is' : 's are'} not synced within the freshness threshold`,
    };
    if (counts.stale * 2 > reporting) failing.push(reason);
    else degraded.push(reason);
  }
  if (counts.never > 0) {
    const detail = counts.never === 1 ? '1 vehicle has never reported a reading' : `${counts.never} vehicles have never reported a reading`;
    degraded.push({ code: 'vehicles_never_reported', detail });
  }
  const reasons = [...failing, ...degraded];
  return { status: failing.length > 0 ? 'failing' : degraded.length > 0 ? 'degraded' : 'ok', reasons };
}

const troubleOrder: ConnectionStatus[] = [
  'auth_failed',
  'credentials_unreadable',
  'failing',
  'disconnected',
  'scheduler_silent',
  'legacy_poller_behind',
  'rate_limited',
  'degraded',
  'disabled',
];

/**
 * Why a stale vehicle is stale: the worst trouble among the connections its devices report through, or, when they
 * all look healthy, that nothing confirmed it lately (no poll is running, or the provider stopped listing it).
 */
export function staleReason(
  deviceConnections: readonly string[],
  health: ReadonlyMap<string, { status: ConnectionStatus; detail: string; label: string }>,
): { code: string; detail: string; connectionId: string | null } {
  let worst: { id: string; status: ConnectionStatus; detail: string; label: string } | undefined;
  for (const id of deviceConnections) {
    const h = health.get(id);
    if (!h || h.status === 'ok') continue;
    if (!worst || troubleOrder.indexOf(h.status) < troubleOrder.indexOf(worst.status)) worst = { id, ...h };
  }
  if (worst) return { code: `connection_${worst.status}`, detail: `${worst.label}: ${worst.detail}`, connectionId: worst.id };
  if (deviceConnections.length === 0) return { code: 'no_devices', detail: 'no provider device is bound to this vehicle', connectionId: null };
  return { code: 'not_synced', detail: 'no successful poll or live stream confirmed this vehicle within the freshness threshold', connectionId: null };
}

/** At or below this, a tracker's own battery is a likely reason its vehicle went quiet. */
export const trackerBatteryLowPct = 15;

/**
 * Why a silent vehicle (synced, but nothing new observed for a while) may be quiet, from what it last reported: its
 * link to its telematics service went offline or to sleep, or its tracker's own battery ran low; null when its
 * last readings say nothing about it (parked and switched off, most likely).
 */
export function silentReason(signals: Readonly<Record<string, { value: unknown } | undefined>>): { code: string; detail: string; connectionId: string | null } | null {
  const link = signals.connectivity_state?.value;
  if (link === 'asleep') return { code: 'vehicle_asleep', detail: 'the vehicle reported that it went to sleep', connectionId: null };
  if (link === 'offline') return { code: 'vehicle_offline', detail: 'the vehicle reported that it went offline', connectionId: null };
  const battery = signals.tracker_battery_pct?.value;
  if (typeof battery === 'number' && battery <= trackerBatteryLowPct) {
    return { code: 'tracker_battery_low', detail: `the tracker's own battery was at ${battery} % when it last reported`, connectionId: null };
  }
  return null;
}
