/**
 * The store's invariants after any fault, for the fault tests and the soak (no vitest here, so `bench/` can use it):
 * each snapshot row is the newest history row of its vehicle and signal (same observed time, same value), every
 * signal with history has a snapshot row, and every stored value fits the signal catalogue (type and bounds).
 */
import { checkSignalValue } from '../../src/canonical/signals.ts';
import type { Sql } from '../../src/core/db/database.ts';

export interface StoreInvariantReport {
  historyRows: number;
  snapshotRows: number;
  /** Snapshot rows that are not the newest history row of their vehicle and signal. */
  snapshotNotNewest: { vehicleId: string; signal: string; snapshotAt: string; newestAt: string | null; sameValue: boolean | null }[];
  /** (vehicle, signal) pairs with history but no snapshot row. */
  snapshotMissing: { vehicleId: string; signal: string }[];
  /** Stored values the catalogue refuses. */
  outOfBounds: { table: 'signal_history' | 'signal_snapshot'; vehicleId: string; signal: string; detail: string }[];
}

/** The report for one workspace, or for the whole store when `workspaceId` is omitted. */
export async function checkStoreInvariants(sql: Sql, workspaceId?: string): Promise<StoreInvariantReport> {
  const ws = workspaceId ?? null;
  const { rows: notNewest } = await sql.query<{ vehicle_id: string; signal: string; snapshot_at: Date; newest_at: Date | null; same_value: boolean | null }>(
    `SELECT s.vehicle_id, s.signal, s.observed_at AS snapshot_at, n.observed_at AS newest_at, n.value = s.value AS same_value
       FROM signal_snapshot s
       LEFT JOIN LATERAL (
         SELECT h.observed_at, h.value FROM signal_history h
          WHERE h.workspace_id = s.workspace_id AND h.vehicle_id = s.vehicle_id AND h.signal = s.signal
          ORDER BY h.observed_at DESC LIMIT 1) n ON true
      WHERE ($1::uuid IS NULL OR s.workspace_id = $1::uuid)
        AND (n.observed_at IS NULL OR n.observed_at <> s.observed_at OR n.value <> s.value)`,
    [ws],
  );
  const { rows: missing } = await sql.query<{ vehicle_id: string; signal: string }>(
    `SELECT DISTINCT h.vehicle_id, h.signal FROM signal_history h
      WHERE ($1::uuid IS NULL OR h.workspace_id = $1::uuid)
        AND NOT EXISTS (SELECT 1 FROM signal_snapshot s WHERE s.workspace_id = h.workspace_id AND s.vehicle_id = h.vehicle_id AND s.signal = h.signal)`,
    [ws],
  );
  const outOfBounds: StoreInvariantReport['outOfBounds'] = [];
  let historyRows = 0;
  let snapshotRows = 0;
  for (const table of ['signal_history', 'signal_snapshot'] as const) {
    const { rows } = await sql.query<{ vehicle_id: string; signal: string; value: unknown }>(
      `SELECT vehicle_id, signal, value FROM ${table} WHERE ($1::uuid IS NULL OR workspace_id = $1::uuid)`,
      [ws],
    );
    if (table === 'signal_history') historyRows = rows.length;
    else snapshotRows = rows.length;
    for (const row of rows) {
      const check = checkSignalValue(row.signal, row.value);
      if (!check.ok) outOfBounds.push({ table, vehicleId: row.vehicle_id, signal: row.signal, detail: check.detail });
    }
  }
  return {
    historyRows,
    snapshotRows,
    snapshotNotNewest: notNewest.map((r) => ({
      vehicleId: r.vehicle_id,
      signal: r.signal,
      snapshotAt: new Date(r.snapshot_at).toISOString(),
      newestAt: r.newest_at === null ? null : new Date(r.newest_at).toISOString(),
      sameValue: r.same_value,
    })),
    snapshotMissing: missing.map((r) => ({ vehicleId: r.vehicle_id, signal: r.signal })),
    outOfBounds,
  };
}

/** The violations only, first few of each, for an assertion message or a log line; empty when all hold. */
export function invariantViolations(report: StoreInvariantReport): string[] {
  const out: string[] = [];
  if (report.snapshotNotNewest.length > 0) out.push(`${report.snapshotNotNewest.length} snapshot rows are not the newest history row: ${JSON.stringify(report.snapshotNotNewest.slice(0, 3))}`);
  if (report.snapshotMissing.length > 0) out.push(`${report.snapshotMissing.length} signals have history but no snapshot: ${JSON.stringify(report.snapshotMissing.slice(0, 3))}`);
  if (report.outOfBounds.length > 0) out.push(`${report.outOfBounds.length} stored values are out of bounds: ${JSON.stringify(report.outOfBounds.slice(0, 3))}`);
  return out;
}
