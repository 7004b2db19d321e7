/**
 * Freshness turns with time, not with writes: a vehicle goes stale when nothing confirms it, silent when it says
 * nothing new, and a connection's health turns when its polls keep failing or its stream process stops reporting.
 * The sweeper evaluates both every `intervalMs` (10 s, so a threshold passed is told within 30 s), compares them with
 * what it told last, and writes each change to the event log with the reason, in one transaction under an advisory
 * lock (one process at a time). A vehicle or connection seen for the first time is recorded without an event: there
 * is no earlier state for it to change from. Workspaces with telematics disabled are skipped.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../logging.ts';
import type { Database, Sql } from '../db/database.ts';
import { loadConnectionHealth, type ConnectionHealthView } from '../health/health-queries.ts';
import { silentReason, staleReason, vehicleConfirmationsCte, vehicleStatusSql, vehicleSyncFromConfirmations, type VehicleStatus } from '../health/rules.ts';
import { connectionSubject, vehicleSubject, type EventDraft } from './catalogue.ts';
import { writeEvents } from './event-log.ts';

/** A fixed key for pg_try_advisory_xact_lock: "fleetwire transition sweeper". */
const sweeperLockKey = 7_265_112_011;
/** Changes written per round; more wait for the next. */
const changesPerRound = 5000;

export interface SweepReport {
  vehicles: number;
  connections: number;
}

interface FreshnessChange {
  workspace_id: string;
  vehicle_id: string;
  status: VehicleStatus;
  previous: VehicleStatus | null;
}

async function vehicleReasons(tx: Sql, changes: FreshnessChange[], health: Map<string, ConnectionHealthView[]>) {
  const reasons = new Map<string, { code: string; detail: string; connectionId: string | null } | null>();
  const stale = changes.filter((c) => c.status === 'stale');
  const silent = changes.filter((c) => c.status === 'silent');
  if (stale.length > 0) {
    const { rows } = await tx.query<{ vehicle_id: string; connections: string[] }>(
      `SELECT vehicle_id, array_agg(DISTINCT connection_id::text) AS connections FROM device_bindings
        WHERE vehicle_id = ANY($1::uuid[]) GROUP BY vehicle_id`,
      [stale.map((c) => c.vehicle_id)],
    );
    const byVehicle = new Map(rows.map((r) => [r.vehicle_id, r.connections]));
    for (const c of stale) {
      const byId = new Map((health.get(c.workspace_id) ?? []).map((h) => [h.id, h]));
      reasons.set(c.vehicle_id, staleReason(byVehicle.get(c.vehicle_id) ?? [], byId));
    }
  }
  if (silent.length > 0) {
    const { rows } = await tx.query<{ vehicle_id: string; signal: string; value: unknown }>(
      `SELECT vehicle_id, signal, value FROM signal_snapshot
        WHERE vehicle_id = ANY($1::uuid[]) AND signal IN ('connectivity_state', 'tracker_battery_pct')`,
      [silent.map((c) => c.vehicle_id)],
    );
    const signals = new Map<string, Record<string, { value: unknown }>>();
    for (const r of rows) signals.set(r.vehicle_id, { ...signals.get(r.vehicle_id), [r.signal]: { value: r.value } });
    for (const c of silent) reasons.set(c.vehicle_id, silentReason(signals.get(c.vehicle_id) ?? {}));
  }
  return reasons;
}

/** One sweep at `nowMs`; undefined when another process is sweeping. */
export async function sweepTransitions(db: Database, nowMs: number): Promise<SweepReport | undefined> {
  const now = new Date(nowMs).toISOString();
  return db.transaction(async (tx) => {
    const { rows: lock } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [sweeperLockKey]);
    if (!lock[0]?.ok) return undefined;

    const { rows: changes } = await tx.query<FreshnessChange>(
      `WITH ${vehicleConfirmationsCte('true')},
       current AS (
         SELECT v.workspace_id, v.id AS vehicle_id, ${vehicleStatusSql('$1::timestamptz')} AS status
           FROM vehicles v
           JOIN telematics_policies p ON p.workspace_id = v.workspace_id
           ${vehicleSyncFromConfirmations}
          WHERE v.active AND p.enabled
       )
       SELECT c.workspace_id, c.vehicle_id, c.status, s.status AS previous
         FROM current c
         LEFT JOIN vehicle_freshness_states s ON s.workspace_id = c.workspace_id AND s.vehicle_id = c.vehicle_id
        WHERE s.status IS DISTINCT FROM c.status
        ORDER BY c.workspace_id, c.vehicle_id
        LIMIT ${changesPerRound}`,
      [now],
    );
    const health = await loadConnectionHealth(tx, 'all', nowMs);
    // A disabled workspace was turned off on purpose: nothing of it runs, so nothing of it turns (its vehicles going
    // stale, its connections `disabled`) until it is turned on again; then the sweep goes on from what it told last.
    const { rows: off } = await tx.query<{ workspace_id: string }>('SELECT workspace_id FROM telematics_policies WHERE NOT enabled');
    for (const { workspace_id } of off) health.delete(workspace_id);
    const { rows: told } = await tx.query<{ workspace_id: string; connection_id: string; status: string }>('SELECT workspace_id, connection_id, status FROM connection_health_states');
    const toldHealth = new Map(told.map((t) => [`${t.workspace_id}/${t.connection_id}`, t.status]));
    const healthChanges: { workspaceId: string; connection: ConnectionHealthView; previous: string | undefined }[] = [];
    for (const [workspaceId, connections] of health) {
      for (const connection of connections) {
        const previous = toldHealth.get(`${workspaceId}/${connection.id}`);
        if (previous !== connection.status) healthChanges.push({ workspaceId, connection, previous });
      }
    }

    const events: EventDraft[] = [];
    const time = now;
    const reasons = await vehicleReasons(tx, changes.filter((c) => c.previous !== null), health);
    for (const c of changes) {
      if (c.previous === null) continue;
      events.push({
        id: randomUUID(),
        workspaceId: c.workspace_id,
        subject: vehicleSubject(c.vehicle_id),
        type: 'fleetwire.vehicle.freshness.changed',
        time,
        data: { vehicleId: c.vehicle_id, status: c.status, previousStatus: c.previous, reason: reasons.get(c.vehicle_id) ?? null },
      });
    }
    for (const { workspaceId, connection, previous } of healthChanges) {
      if (previous === undefined) continue;
      events.push({
        id: randomUUID(),
        workspaceId,
        subject: connectionSubject(connection.id),
        type: 'fleetwire.connection.health.changed',
        time,
        data: {
          connectionId: connection.id,
          provider: connection.provider,
          transport: connection.transport,
          label: connection.label,
          status: connection.status,
          previousStatus: previous,
          detail: connection.detail,
          lastError: connection.lastError,
        },
      });
    }
    if (changes.length > 0) {
      await tx.query(
        `INSERT INTO vehicle_freshness_states AS s (workspace_id, vehicle_id, status, changed_at)
         SELECT c.workspace_id, c.vehicle_id, c.status, now() FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS c(workspace_id, vehicle_id, status)
         ON CONFLICT (workspace_id, vehicle_id) DO UPDATE SET status = excluded.status, changed_at = now()`,
        [changes.map((c) => c.workspace_id), changes.map((c) => c.vehicle_id), changes.map((c) => c.status)],
      );
    }
    if (healthChanges.length > 0) {
      await tx.query(
        `INSERT INTO connection_health_states AS s (workspace_id, connection_id, status, changed_at)
         SELECT c.workspace_id, c.connection_id, c.status, now() FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS c(workspace_id, connection_id, status)
         ON CONFLICT (workspace_id, connection_id) DO UPDATE SET status = excluded.status, changed_at = now()`,
        [healthChanges.map((c) => c.workspaceId), healthChanges.map((c) => c.connection.id), healthChanges.map((c) => c.connection.status)],
      );
    }
    await writeEvents(tx, events);
    return { vehicles: changes.filter((c) => c.previous !== null).length, connections: healthChanges.filter((c) => c.previous !== undefined).length };
  });
}

export interface TransitionSweeper {
  start(): void;
  stop(): Promise<void>;
}

export function createTransitionSweeper(options: { db: Database; clock: () => number; intervalMs?: number; logger?: Logger }): TransitionSweeper {
  const intervalMs = options.intervalMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let lastErrorLogAt = 0;
  return {
    start() {
      timer = setInterval(() => {
        if (running) return;
        running = sweepTransitions(options.db, options.clock())
          .catch((error: unknown) => {
            if (Date.now() - lastErrorLogAt > 60_000) {
              lastErrorLogAt = Date.now();
              options.logger?.warn({ err: error }, 'transition sweep failed; it runs again');
            }
          })
          .finally(() => {
            running = undefined;
          });
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
