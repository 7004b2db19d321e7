/**
 * What the store holds for one connection, keyed like ground truth, and the value comparison every
 * served-versus-stored check uses. Free of the test runner, so the soak uses it too.
 */
import type { Database } from '../../src/core/db/database.ts';
import type { ServedReading } from '../../src/sim/ground-truth.ts';

export interface StoredReading {
  externalDeviceId: string;
  signal: ServedReading['signal'];
  observedAtMs: number;
  value: unknown;
}

/** Every history row of a connection, with the external id of the device binding it came through. */
export async function storedReadings(db: Database, workspaceId: string, connectionId: string): Promise<StoredReading[]> {
  const { rows } = await db.query<{ external_id: string; signal: string; observed_ms: number; value: unknown }>(
    `SELECT d.external_id, h.signal, (extract(epoch FROM h.observed_at) * 1000)::float8 AS observed_ms, h.value
       FROM signal_history h
       JOIN device_bindings d ON d.workspace_id = h.workspace_id AND d.vehicle_id = h.vehicle_id AND d.connection_id = h.connection_id
      WHERE h.workspace_id = $1 AND h.connection_id = $2`,
    [workspaceId, connectionId],
  );
  return rows.map((r) => ({ externalDeviceId: r.external_id, signal: r.signal as StoredReading['signal'], observedAtMs: Math.round(r.observed_ms), value: r.value }));
}

/** Equal within the rounding of unit conversions (the simulators convert back with their own arithmetic). */
export function sameServedValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 0.011 + Math.abs(b) * 1e-9;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => sameServedValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}
