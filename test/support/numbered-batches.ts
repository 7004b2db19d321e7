/**
 * Ingest batches that can be told apart in the store: batch `n` holds one update per vehicle of the fleet, four
 * readings each, all observed at `baseMs + n s`. So the rows of a batch are the history rows of the workspace at
 * that observed time, a batch is stored whole or not at all when that count is 0 or `readingsPerBatch`, and the
 * value of every reading follows from (n, vehicle, signal). The odometer rises with n, so out-of-order delivery
 * is late, never implausible.
 */
import type { Sql } from '../../src/core/db/database.ts';
import { update, type TestFleet } from './fleet.ts';

export const readingsPerUpdate = 4;

export const batchObservedAt = (baseMs: number, n: number) => baseMs + n * 1000;

export function numberedBatch(fleet: TestFleet, baseMs: number, n: number) {
  const observedAt = batchObservedAt(baseMs, n);
  return fleet.vehicles.map((_, i) =>
    update(
      fleet,
      [
        { signal: 'soc_pct', value: (n * 7 + i) % 100, observedAt },
        { signal: 'odometer_km', value: 10_000 + i * 10_000 + n, observedAt },
        { signal: 'location', value: { lat: 52 + ((n + i) % 1000) / 1000, lon: 13 + i / 1000 }, observedAt },
        { signal: 'speed_kph', value: (n * 3 + i) % 120, observedAt },
      ],
      { vehicle: i },
    ),
  );
}

/** How many readings of each batch the workspace's history holds, by batch number. */
export async function storedBatches(sql: Sql, workspaceId: string, baseMs: number): Promise<Map<number, number>> {
  const { rows } = await sql.query<{ ms: number; n: number }>(
    `SELECT (extract(epoch FROM observed_at) * 1000)::float8 AS ms, count(*)::int AS n FROM signal_history WHERE workspace_id = $1 GROUP BY observed_at`,
    [workspaceId],
  );
  return new Map(rows.map((r) => [Math.round((Math.round(r.ms) - baseMs) / 1000), r.n]));
}

/**
 * Stored readings whose value is not the one their batch sent, and stored readings no batch up to `lastBatch`
 * sent; the first few, for an assertion.
 */
export async function wrongStoredValues(sql: Sql, fleet: TestFleet, baseMs: number, lastBatch: number): Promise<string[]> {
  const expected = new Map<string, string>();
  for (let n = 1; n <= lastBatch; n += 1) {
    for (const [i, u] of numberedBatch(fleet, baseMs, n).entries()) {
      for (const r of u.readings) expected.set(`${fleet.vehicles[i]!.id}|${r.signal}|${Date.parse(r.observedAt)}`, JSON.stringify(r.value));
    }
  }
  const { rows } = await sql.query<{ vehicle_id: string; signal: string; ms: number; value: unknown }>(
    `SELECT vehicle_id, signal, (extract(epoch FROM observed_at) * 1000)::float8 AS ms, value FROM signal_history WHERE workspace_id = $1`,
    [fleet.workspaceId],
  );
  const wrong: string[] = [];
  for (const r of rows) {
    const key = `${r.vehicle_id}|${r.signal}|${Math.round(r.ms)}`;
    const want = expected.get(key);
    if (want !== JSON.stringify(r.value)) wrong.push(`${key}: stored ${JSON.stringify(r.value)}, sent ${want ?? 'nothing'}`);
    if (wrong.length >= 5) break;
  }
  return wrong;
}

/** A fleet made by `createFleet` (devices `dev-<i>`), read back from the store in vehicle order: for a process that did not make it. */
export async function loadTestFleet(sql: Sql, workspaceId: string): Promise<TestFleet> {
  const { rows } = await sql.query<{ connection_id: string; external_id: string; vehicle_id: string; provider: string }>(
    `SELECT d.connection_id, d.external_id, d.vehicle_id, c.provider FROM device_bindings d
       JOIN provider_connections c ON c.workspace_id = d.workspace_id AND c.id = d.connection_id
      WHERE d.workspace_id = $1`,
    [workspaceId],
  );
  const ordered = rows.sort((a, b) => Number(a.external_id.replace(/^dev-/, '')) - Number(b.external_id.replace(/^dev-/, '')));
  return {
    workspaceId,
    connectionId: ordered[0]!.connection_id,
    provider: ordered[0]!.provider,
    vehicles: ordered.map((r) => ({ id: r.vehicle_id, externalId: r.external_id })),
  };
}
