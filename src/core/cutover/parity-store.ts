/**
 * Parity kept as the readings arrive, while a workspace is in shadow (docs/OPERATIONS.md, "Migrating a workspace").
 * Each reading of either side is stored once in `shadow_readings` and paired, in the same statement, with the
 * nearest unpaired reading of the other side of its vehicle and signal observed within the gate's `matchSeconds`;
 * the pair's values are compared within the signal's tolerance (tolerances.ts). Each pair is counted once, when its
 * second reading arrives, on `parity_hours` with each side's count and lag: the report over a day then reads hours of
 * counts, not readings. The ingest unit of work calls this with the vehicles it has locked, so two batches for one
 * vehicle pair one after the other.
 */
import { jsonRecords, textArray } from '../db/array-literal.ts';
import type { Sql } from '../db/database.ts';
import { snapshotKey, type SnapshotPoint } from '../ingest/classify.ts';
import { agreementSql } from './tolerances.ts';

export type ParitySide = 'core' | 'legacy';

export interface ParityReading {
  workspaceId: string;
  vehicleId: string;
  signal: string;
  observedAt: string;
  valueJson: string;
  receivedAt: string;
  connectionId: string;
  /** The workspace's gate: readings this close in observed time are one reading. */
  matchSeconds: number;
}

/** Stores `readings` of `side` and pairs them; a reading already stored (a re-poll) is left as it was. */
export async function recordParity(tx: Sql, side: ParitySide, readings: readonly ParityReading[]): Promise<void> {
  if (readings.length === 0) return;
  const other: ParitySide = side === 'core' ? 'legacy' : 'core';
  const [coreValue, legacyValue] = side === 'core' ? ['p.value', 'p.other_value'] : ['p.other_value', 'p.value'];
  await tx.query(
    `WITH incoming AS (
       SELECT DISTINCT ON (workspace_id, vehicle_id, signal, observed_at) *
         FROM ROWS FROM (unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::timestamptz[]),
                         string_to_table($5, E'\\x1e'), unnest($6::timestamptz[]), unnest($7::uuid[]), unnest($8::int[]))
              AS r(workspace_id, vehicle_id, signal, observed_at, value, received_at, connection_id, match_seconds)
        ORDER BY workspace_id, vehicle_id, signal, observed_at
     ),
     fresh AS (
       SELECT i.workspace_id, i.vehicle_id, i.signal, i.observed_at, i.value::jsonb AS value, i.received_at, i.connection_id, i.match_seconds
         FROM incoming i
        WHERE NOT EXISTS (SELECT 1 FROM shadow_readings x
                           WHERE x.workspace_id = i.workspace_id AND x.vehicle_id = i.vehicle_id AND x.signal = i.signal
                             AND x.side = $9 AND x.observed_at = i.observed_at)
     ),
     nearest AS (
       SELECT f.*, o.observed_at AS other_at, o.value AS other_value
         FROM fresh f
         CROSS JOIN LATERAL (
           SELECT o.observed_at, o.value FROM shadow_readings o
            WHERE o.workspace_id = f.workspace_id AND o.vehicle_id = f.vehicle_id AND o.signal = f.signal AND o.side = $10
              AND o.matched_at IS NULL
              AND o.observed_at BETWEEN f.observed_at - make_interval(secs => f.match_seconds) AND f.observed_at + make_interval(secs => f.match_seconds)
            ORDER BY abs(extract(epoch FROM o.observed_at - f.observed_at)), o.observed_at
            LIMIT 1) o
     ),
     paired AS (
       SELECT DISTINCT ON (p.workspace_id, p.vehicle_id, p.signal, p.other_at)
              p.workspace_id, p.vehicle_id, p.signal, p.observed_at, p.other_at, p.value, p.other_value,
              ${agreementSql('p.signal', 'p.value', 'p.other_value')} AS agreed
         FROM nearest p
        ORDER BY p.workspace_id, p.vehicle_id, p.signal, p.other_at, abs(extract(epoch FROM p.other_at - p.observed_at)), p.observed_at
     ),
     stored AS (
       INSERT INTO shadow_readings (workspace_id, vehicle_id, signal, side, observed_at, value, received_at, connection_id, matched_at, agreed)
       SELECT f.workspace_id, f.vehicle_id, f.signal, $9, f.observed_at, f.value, f.received_at, f.connection_id, p.other_at, p.agreed
         FROM fresh f
         LEFT JOIN paired p ON p.workspace_id = f.workspace_id AND p.vehicle_id = f.vehicle_id AND p.signal = f.signal AND p.observed_at = f.observed_at
       ON CONFLICT DO NOTHING
       RETURNING workspace_id, vehicle_id, signal, observed_at, received_at, matched_at, agreed
     ),
     partners AS (
       UPDATE shadow_readings o SET matched_at = p.observed_at, agreed = p.agreed
         FROM paired p
        WHERE o.workspace_id = p.workspace_id AND o.vehicle_id = p.vehicle_id AND o.signal = p.signal AND o.side = $10
          AND o.observed_at = p.other_at
     ),
     hours AS (
       SELECT s.workspace_id, date_bin('1 hour', s.observed_at, timestamptz '2000-01-01 00:00:00+00') AS hour, s.vehicle_id, s.signal,
              count(*)::int AS n, sum(GREATEST(0, extract(epoch FROM s.received_at - s.observed_at) * 1000))::bigint AS lag_ms,
              max(s.observed_at) AS newest, count(s.matched_at)::int AS pairs, count(*) FILTER (WHERE s.agreed)::int AS agreed,
              (array_agg(jsonb_build_object('observedAt', s.observed_at, 'core', ${coreValue}, 'legacy', ${legacyValue})
                         ORDER BY s.observed_at DESC) FILTER (WHERE s.agreed = false))[1] AS example
         FROM stored s
         LEFT JOIN paired p ON p.workspace_id = s.workspace_id AND p.vehicle_id = s.vehicle_id AND p.signal = s.signal AND p.observed_at = s.observed_at
        GROUP BY 1, 2, 3, 4
     )
     INSERT INTO parity_hours AS h (workspace_id, hour, vehicle_id, signal, ${side}_count, ${side}_lag_ms, ${side}_newest, pairs, agreed, example)
     SELECT workspace_id, hour, vehicle_id, signal, n, lag_ms, newest, pairs, agreed, example FROM hours
     ON CONFLICT (workspace_id, hour, vehicle_id, signal) DO UPDATE
        SET ${side}_count = h.${side}_count + excluded.${side}_count,
            ${side}_lag_ms = h.${side}_lag_ms + excluded.${side}_lag_ms,
            ${side}_newest = GREATEST(h.${side}_newest, excluded.${side}_newest),
            pairs = h.pairs + excluded.pairs,
            agreed = h.agreed + excluded.agreed,
            example = COALESCE(excluded.example, h.example)`,
    [
      textArray(readings.map((r) => r.workspaceId)),
      textArray(readings.map((r) => r.vehicleId)),
      textArray(readings.map((r) => r.signal)),
      textArray(readings.map((r) => r.observedAt)),
      jsonRecords(readings.map((r) => r.valueJson)),
      textArray(readings.map((r) => r.receivedAt)),
      textArray(readings.map((r) => r.connectionId)),
      `{${readings.map((r) => r.matchSeconds).join(',')}}`,
      side,
      other,
    ],
  );
}

/**
 * The newest of core's shadow readings of each of `signals` for the given vehicles, keyed as the ingest snapshot is
 * (classify.ts): core's shadow readings are judged against core's own (a counter never runs backwards), not
 * against the legacy poller's snapshot, whose values parity is there to question.
 */
export async function loadShadowPoints(
  tx: Sql,
  vehicles: readonly { workspaceId: string; vehicleId: string }[],
  signals: readonly string[],
): Promise<Map<string, SnapshotPoint>> {
  const points = new Map<string, SnapshotPoint>();
  if (vehicles.length === 0 || signals.length === 0) return points;
  const { rows } = await tx.query<{ vehicle_id: string; signal: string; observed_ms: number; value: unknown }>(
    `SELECT k.vehicle_id, g.signal, (extract(epoch FROM s.observed_at) * 1000)::float8 AS observed_ms, s.value
       FROM unnest($1::uuid[], $2::uuid[]) AS k(workspace_id, vehicle_id)
      CROSS JOIN unnest($3::text[]) AS g(signal)
      CROSS JOIN LATERAL (
        SELECT s.observed_at, s.value FROM shadow_readings s
         WHERE s.workspace_id = k.workspace_id AND s.vehicle_id = k.vehicle_id AND s.signal = g.signal AND s.side = 'core'
         ORDER BY s.observed_at DESC LIMIT 1) s`,
    [textArray(vehicles.map((v) => v.workspaceId)), textArray(vehicles.map((v) => v.vehicleId)), textArray(signals)],
  );
  for (const row of rows) points.set(snapshotKey(row.vehicle_id, row.signal), { observedMs: Math.round(row.observed_ms), value: row.value });
  return points;
}
