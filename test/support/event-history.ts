/**
 * Checks that events tell what history holds: each value a vehicle event names (a state change's signals, a charging
 * turn's state, a crossed threshold's SoC) is a row of signal_history for that vehicle, signal and observed time,
 * with that value. An event with no such row has no committed cause.
 */
import type { Sql } from '../../src/core/db/database.ts';
import type { CommittedEvent } from './webhook-receiver.ts';

export async function eventsWithoutCause(sql: Sql, workspaceId: string, events: readonly CommittedEvent[], limit = 10): Promise<string[]> {
  const { rows } = await sql.query<{ vehicle_id: string; signal: string; ms: number; value: unknown }>(
    `SELECT vehicle_id, signal, (extract(epoch FROM observed_at) * 1000)::float8 AS ms, value FROM signal_history WHERE workspace_id = $1`,
    [workspaceId],
  );
  const history = new Map(rows.map((r) => [`${r.vehicle_id}|${r.signal}|${Math.round(r.ms)}`, JSON.stringify(r.value)]));
  const problems: string[] = [];
  const expect = (e: CommittedEvent, vehicleId: string, signal: string, observedAt: string, value: unknown) => {
    const key = `${vehicleId}|${signal}|${Date.parse(observedAt)}`;
    const stored = history.get(key);
    if (stored !== JSON.stringify(value)) problems.push(`${e.type} ${e.id} names ${signal} = ${JSON.stringify(value)} at ${observedAt}; history holds ${stored ?? 'nothing'}`);
  };
  for (const e of events) {
    const data = e.data as Record<string, unknown> & { vehicleId: string; observedAt: string };
    if (e.type === 'fleetwire.vehicle.state.changed') {
      for (const [signal, point] of Object.entries(data.signals as Record<string, { value: unknown; observedAt: string }>)) expect(e, data.vehicleId, signal, point.observedAt, point.value);
    } else if (e.type === 'fleetwire.vehicle.charging.started' || e.type === 'fleetwire.vehicle.charging.stopped') {
      expect(e, data.vehicleId, 'charging_state', data.observedAt, data.chargingState);
    } else if (e.type === 'fleetwire.vehicle.soc.crossed') {
      expect(e, data.vehicleId, 'soc_pct', data.observedAt, data.socPct);
    }
    if (problems.length >= limit) break;
  }
  return problems;
}
