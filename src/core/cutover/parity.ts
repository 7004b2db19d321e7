/**
 * The parity report of a workspace in shadow (docs/API.md, "Cutover"): over the last hours, for the whole
 * fleet, each signal and each vehicle, how much of what the legacy poller delivered core's polling also saw
 * (coverage), how much of what both saw agrees within the signal's tolerance (agreement), how far behind each side
 * is (freshness: received minus observed, and the newest reading), the worst vehicles, and examples of each kind of
 * difference. It reads `parity_hours` (kept as readings arrive, parity-store.ts) and a few unpaired readings of the
 * worst vehicles, never a day of readings.
 */
import type { Sql } from '../db/database.ts';
import type { CutoverGate } from '../registry/workspaces.ts';

export interface ParityFigures {
  legacyReadings: number;
  coreReadings: number;
  /** Readings both sides have (one of each, observed within the gate's match seconds). */
  pairs: number;
  agreed: number;
  /** The legacy poller's readings core's polling lacks, and the other way round. */
  missingInCore: number;
  missingInLegacy: number;
  /** Of the legacy poller's readings, the share core also has; null with none. */
  coveragePct: number | null;
  /** Of the pairs, the share whose values agree; null with none. */
  agreementPct: number | null;
}

export interface SideFreshness {
  /** Mean of received minus observed, in seconds; null with no reading. */
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

export interface ParityReport {
  workspaceId: string;
  window: { hours: number; from: string; to: string };
  summary: ParityFigures & { freshness: { core: SideFreshness; legacy: SideFreshness } };
  bySignal: (ParityFigures & { signal: string })[];
  /** The vehicles parity is worst for (lowest of coverage and agreement), with the signal it is worst in. */
  worstVehicles: (ParityFigures & { vehicleId: string; vehicleName: string; worstSignal: string })[];
  differences: ParityDifference[];
  gate: { minCoveragePct: number; minAgreementPct: number; met: boolean; reasons: string[] };
}

interface Row {
  vehicle_id: string | null;
  signal: string | null;
  legacy_count: string;
  core_count: string;
  pairs: string;
  agreed: string;
  legacy_lag_ms: string;
  core_lag_ms: string;
  legacy_newest: Date | null;
  core_newest: Date | null;
}

const hourMs = 3600_000;
const share = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 100 : null);

function figures(row: Row): ParityFigures {
  const legacy = Number(row.legacy_count);
  const core = Number(row.core_count);
  const pairs = Number(row.pairs);
  const agreed = Number(row.agreed);
  return {
    legacyReadings: legacy,
    coreReadings: core,
    pairs,
    agreed,
    missingInCore: Math.max(0, legacy - pairs),
    missingInLegacy: Math.max(0, core - pairs),
    coveragePct: share(pairs, legacy),
    agreementPct: share(agreed, pairs),
  };
}

/** The lower of coverage and agreement, for ranking; a vehicle with nothing to compare ranks last. */
const score = (f: ParityFigures) => Math.min(f.coveragePct ?? 100, f.agreementPct ?? 100);

/**
 * Parity over the last `windowHours` hours (by the hours of observed time, the current one included) up to
 * `nowMs`, judged against `gate`; in the caller's transaction (it sets the statement's memory for it alone). A reading of the last minutes whose pair has not arrived yet counts as missing:
 * readings arriving late show as such at the window's end, a small share of a day's window.
 */
export async function loadParity(tx: Sql, workspaceId: string, gate: CutoverGate, windowHours: number, nowMs: number): Promise<ParityReport> {
  const to = nowMs;
  const from = Math.floor(nowMs / hourMs) * hourMs - (windowHours - 1) * hourMs;
  const range = [workspaceId, new Date(from).toISOString(), new Date(to).toISOString()];
  // The hours summed per vehicle and signal first (a hash aggregate, given the memory for the tens of thousands of
  // groups of a big fleet instead of sorting a day of hours through disk), then those sums by signal and in all.
  await tx.query("SET LOCAL work_mem = '16MB'");
  const sums = `sum(legacy_count)::bigint AS legacy_count, sum(core_count)::bigint AS core_count, sum(pairs)::bigint AS pairs,
                sum(agreed)::bigint AS agreed, sum(legacy_lag_ms)::bigint AS legacy_lag_ms, sum(core_lag_ms)::bigint AS core_lag_ms,
                max(legacy_newest) AS legacy_newest, max(core_newest) AS core_newest`;
  const { rows } = await tx.query<Row>(
    `WITH per AS MATERIALIZED (
       SELECT vehicle_id, signal, ${sums}
         FROM parity_hours
        WHERE workspace_id = $1 AND hour >= $2 AND hour < $3
        GROUP BY vehicle_id, signal
     )
     SELECT vehicle_id, signal, legacy_count::text, core_count::text, pairs::text, agreed::text, legacy_lag_ms::text, core_lag_ms::text,
            legacy_newest, core_newest
       FROM per
     UNION ALL
     SELECT NULL, signal, legacy_count::text, core_count::text, pairs::text, agreed::text, legacy_lag_ms::text, core_lag_ms::text,
            legacy_newest, core_newest
       FROM (SELECT signal, ${sums} FROM per GROUP BY GROUPING SETS ((), (signal))) t`,
    range,
  );
  const empty: Row = { vehicle_id: null, signal: null, legacy_count: '0', core_count: '0', pairs: '0', agreed: '0', legacy_lag_ms: '0', core_lag_ms: '0', legacy_newest: null, core_newest: null };
  const total = rows.find((r) => r.vehicle_id === null && r.signal === null) ?? empty;
  const bySignal = rows.filter((r) => r.vehicle_id === null && r.signal !== null).map((r) => ({ signal: r.signal!, ...figures(r) }));
  bySignal.sort((a, b) => score(a) - score(b) || a.signal.localeCompare(b.signal));

  // Per vehicle: its signals summed, and the signal it is worst in.
  const perVehicle = new Map<string, { sum: Row; worst: { signal: string; score: number } }>();
  for (const r of rows.filter((row) => row.vehicle_id !== null)) {
    const entry = perVehicle.get(r.vehicle_id!) ?? { sum: { ...empty, vehicle_id: r.vehicle_id }, worst: { signal: r.signal!, score: Infinity } };
    for (const key of ['legacy_count', 'core_count', 'pairs', 'agreed'] as const) entry.sum[key] = String(Number(entry.sum[key]) + Number(r[key]));
    const s = score(figures(r));
    if (s < entry.worst.score) entry.worst = { signal: r.signal!, score: s };
    perVehicle.set(r.vehicle_id!, entry);
  }
  const ranked = [...perVehicle]
    .map(([vehicleId, { sum, worst }]) => ({ vehicleId, worstSignal: worst.signal, worstScore: worst.score, ...figures(sum) }))
    .filter((v) => v.worstScore < 100)
    .sort((a, b) => a.worstScore - b.worstScore || score(a) - score(b) || a.vehicleId.localeCompare(b.vehicleId))
    .slice(0, 10);
  const names = await vehicleNames(tx, workspaceId, ranked.map((v) => v.vehicleId));
  const worstVehicles = ranked.map(({ worstScore: _, ...v }) => ({ ...v, vehicleName: names.get(v.vehicleId) ?? '' }));
  const differences = await loadDifferences(tx, range, worstVehicles.map((v) => ({ vehicleId: v.vehicleId, signal: v.worstSignal })), names);

  const summary = {
    ...figures(total),
    freshness: {
      core: side(Number(total.core_count), Number(total.core_lag_ms), total.core_newest),
      legacy: side(Number(total.legacy_count), Number(total.legacy_lag_ms), total.legacy_newest),
    },
  };
  return {
    workspaceId,
    window: { hours: windowHours, from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    summary,
    bySignal,
    worstVehicles,
    differences,
    gate: judgeGate(summary, gate),
  };
}

function side(count: number, lagMs: number, newest: Date | null): SideFreshness {
  return { meanLagSeconds: count > 0 ? Math.round(lagMs / count / 100) / 10 : null, newestObservedAt: newest ? newest.toISOString() : null };
}

/**
 * Whether parity allows going from shadow to core: coverage and agreement at least the gate's, and core no further
 * behind than the legacy poller (its mean lag within the gate's match seconds of the legacy's). Each shortfall is a
 * reason.
 */
export function judgeGate(summary: ParityReport['summary'], gate: CutoverGate): ParityReport['gate'] {
  const reasons: string[] = [];
  if (summary.legacyReadings === 0) reasons.push('no reading of the legacy poller in the window: nothing to compare core with yet');
  else {
    if ((summary.coveragePct ?? 0) < gate.minCoveragePct) {
      reasons.push(`coverage ${summary.coveragePct} % is below ${gate.minCoveragePct} %: core's polling lacks ${summary.missingInCore} of the legacy poller's ${summary.legacyReadings} readings`);
    }
    if (summary.agreementPct === null || summary.agreementPct < gate.minAgreementPct) {
      reasons.push(`agreement ${summary.agreementPct ?? 0} % is below ${gate.minAgreementPct} %: ${summary.pairs - summary.agreed} of ${summary.pairs} readings both have differ beyond the signal's tolerance`);
    }
    const core = summary.freshness.core.meanLagSeconds;
    const legacy = summary.freshness.legacy.meanLagSeconds;
    if (core === null) reasons.push('core has no reading in the window');
    else if (legacy !== null && core > legacy + gate.matchSeconds) {
      reasons.push(`core is further behind than the legacy poller: a mean lag of ${core} s against ${legacy} s`);
    }
  }
  return { minCoveragePct: gate.minCoveragePct, minAgreementPct: gate.minAgreementPct, met: reasons.length === 0, reasons };
}

async function vehicleNames(sql: Sql, workspaceId: string, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const { rows } = await sql.query<{ id: string; name: string }>('SELECT id, name FROM vehicles WHERE workspace_id = $1 AND id = ANY($2::uuid[])', [workspaceId, ids]);
  return new Map(rows.map((r) => [r.id, r.name]));
}

/**
 * Examples for the worst vehicles, each in its worst signal: the latest disagreement, and the first readings only
 * one side has (up to three a side).
 */
async function loadDifferences(
  sql: Sql,
  range: readonly string[],
  worst: readonly { vehicleId: string; signal: string }[],
  names: ReadonlyMap<string, string>,
): Promise<ParityDifference[]> {
  if (worst.length === 0) return [];
  const keys = [worst.map((w) => w.vehicleId), worst.map((w) => w.signal)];
  const { rows } = await sql.query<{ vehicle_id: string; signal: string; kind: ParityDifference['kind']; observed_at: Date; core: unknown; legacy: unknown }>(
    `WITH worst AS (SELECT * FROM unnest($4::uuid[], $5::text[]) AS w(vehicle_id, signal))
     SELECT w.vehicle_id, w.signal, 'disagreement' AS kind, (d.example ->> 'observedAt')::timestamptz AS observed_at, d.example -> 'core' AS core, d.example -> 'legacy' AS legacy
       FROM worst w
       CROSS JOIN LATERAL (SELECT h.example FROM parity_hours h
                            WHERE h.workspace_id = $1 AND h.hour >= $2 AND h.hour < $3 AND h.vehicle_id = w.vehicle_id AND h.signal = w.signal
                              AND h.example IS NOT NULL
                            ORDER BY h.hour DESC LIMIT 1) d
     UNION ALL
     SELECT w.vehicle_id, w.signal, CASE u.side WHEN 'legacy' THEN 'missing_in_core' ELSE 'missing_in_legacy' END, u.observed_at,
            CASE WHEN u.side = 'core' THEN u.value END, CASE WHEN u.side = 'legacy' THEN u.value END
       FROM worst w
       CROSS JOIN (VALUES ('legacy'), ('core')) AS sides(side)
       CROSS JOIN LATERAL (SELECT s.side, s.observed_at, s.value FROM shadow_readings s
                            WHERE s.workspace_id = $1 AND s.vehicle_id = w.vehicle_id AND s.signal = w.signal AND s.side = sides.side
                              AND s.matched_at IS NULL AND s.observed_at >= $2 AND s.observed_at < $3
                            ORDER BY s.observed_at LIMIT 3) u`,
    [...range, ...keys],
  );
  const order = new Map(worst.map((w, i) => [w.vehicleId, i]));
  rows.sort((a, b) => order.get(a.vehicle_id)! - order.get(b.vehicle_id)! || a.observed_at.getTime() - b.observed_at.getTime());
  return rows.map((r) => ({
    vehicleId: r.vehicle_id,
    vehicleName: names.get(r.vehicle_id) ?? '',
    signal: r.signal,
    kind: r.kind,
    observedAt: r.observed_at.toISOString(),
    ...(r.core !== null ? { core: r.core } : {}),
    ...(r.legacy !== null ? { legacy: r.legacy } : {}),
  }));
}
