/**
 * The parity part of `npm run bench:read`: the read bench's workspace put in cutover shadow, with a day of parity kept
 * as it would be after a day of core's polling beside the legacy poller (docs/OPERATIONS.md, "Migrating a
 * workspace"), and a check of the report `GET .../cutover/parity?window=24h` gives on it.
 *
 * Every vehicle has a `parity_hours` row for each of four signals in each of the 25 hours before the current one,
 * so the report's 24 h window (the current hour and the 23 before it, parity.ts) lies among them even when the hour
 * turns during the run: 60 readings an hour a side, one a minute, paired within the gate's 10 s and agreeing,
 * received 10-30 s after they were observed. The current hour is left empty. Two kinds of vehicle are worse:
 * - one in fifty disagrees on half its odometer_km pairs (core 1.5 km behind, every odd minute), and core has two
 *   odometer readings of it in the last hour the legacy poller lacks;
 * - one in twenty-five has 70 % coverage: core lacks 18 of the legacy poller's 60 readings an hour, every signal.
 * The second is what fails the default gate (99 %): fleet coverage 98.8 %, where one in a hundred at 80 % would leave
 * it at 99.8 % and the gate met (agreement is 99.75 %).
 *
 * `shadow_readings` holds only a few of the unpaired readings, within the window: the two core-only odometer
 * readings, and three of each signal core lacks of each under-covered vehicle.
 */
import type { Database } from '../src/core/db/database.ts';
import { putCutover } from '../src/core/registry/workspaces.ts';

export const paritySignals = ['soc_pct', 'odometer_km', 'location', 'charging_state'] as const;
/** The report's window, as the bench asks for it. */
export const parityWindowHours = 24;
const seededHours = parityWindowHours + 1;
const perHour = 60;
/** Vehicle number n (1-based, in the bench's order) disagrees on odometer_km when n % 50 = 0. */
const disagreeEvery = 50;
const disagreedPerHour = 30;
const coreOnlyLastHour = 2;
/** Vehicle number n has low coverage when n % 25 = 12 (never a disagreeing one). */
const underCoveredEvery = 25;
const underCoveredAt = 12;
const missingPerHour = 18;
const hourMs = 3600_000;

export interface ParitySeed {
  /** The hour the seed counts back from (hour k is `baseHourMs - k h`, k = 1..25). */
  baseHourMs: number;
  hourRows: number;
  unpairedRows: number;
  disagreeing: ReadonlySet<string>;
  underCovered: ReadonlySet<string>;
  seconds: number;
}

/** A plausible value of each parity signal at minute `at` (a timestamptz) of vehicle number `n`, as SQL. */
const valueSql = (signal: string, n: string, at: string) => `CASE ${signal}
  WHEN 'soc_pct' THEN to_jsonb(round((80 - ${n} % 30 - extract(epoch FROM ${at}) / 3600 % 20)::numeric, 1))
  WHEN 'odometer_km' THEN to_jsonb(round((10000 + ${n} + extract(epoch FROM ${at}) / 75 % 1000)::numeric, 1))
  WHEN 'location' THEN jsonb_build_object('lat', 52.4 + (${n} % 1000) / 10000.0, 'lon', 13.3 + (${n} % 700) / 10000.0)
  ELSE to_jsonb(CASE WHEN ${n} % 4 = 0 THEN 'charging' ELSE 'not_charging' END) END`;

/**
 * Puts the workspace in shadow and seeds its parity, set-based: one statement per signal for the hours, two for the
 * unpaired readings. Checks the rows against the table's rules before returning.
 */
export async function seedParity(db: Database, fleet: { workspaceId: string; connectionId: string; vehicleIds: readonly string[] }): Promise<ParitySeed> {
  const started = Date.now();
  await putCutover(db, fleet.workspaceId, 'shadow', { actor: 'bench', reason: 'read bench: parity report' });
  const baseHourMs = Math.floor(Date.now() / hourMs) * hourMs;
  const base = new Date(baseHourMs).toISOString();
  const ids = [...fleet.vehicleIds];
  for (const signal of paritySignals) {
    // Readings of vehicle n are observed at second n % 50 of each minute by the legacy poller and n % 5 s later by
    // core; the odometer example is the last odd minute's, the latest disagreement of the hour.
    await db.query(
      `INSERT INTO parity_hours (workspace_id, vehicle_id, signal, hour, core_count, legacy_count, core_lag_ms, legacy_lag_ms,
                                 core_newest, legacy_newest, pairs, agreed, example)
       SELECT $1::uuid, v.id, $3::text, h.hour, r.paired + r.core_only, $6::int, (r.paired + r.core_only) * r.core_lag_ms, $6::int * r.legacy_lag_ms,
              h.hour + make_interval(mins => 59, secs => r.at_s + v.n % 5), h.hour + make_interval(mins => 59, secs => r.at_s),
              r.paired, r.paired - r.disagreed,
              CASE WHEN r.disagreed > 0 THEN jsonb_build_object(
                'observedAt', h.hour + make_interval(mins => 59, secs => r.at_s),
                'core', to_jsonb(round((10000 + v.n + 0.8 * (($5::int - h.k) * 60 + 59) - 1.5)::numeric, 1)),
                'legacy', to_jsonb(round((10000 + v.n + 0.8 * (($5::int - h.k) * 60 + 59))::numeric, 1))) END
         FROM unnest($2::uuid[]) WITH ORDINALITY AS v(id, n)
        CROSS JOIN LATERAL (SELECT k, $4::timestamptz - make_interval(hours => k) AS hour FROM generate_series(1, $5::int) AS k) h
        CROSS JOIN LATERAL (
          SELECT $6::int - CASE WHEN v.n % $9::int = $10::int THEN $11::int ELSE 0 END AS paired,
                 CASE WHEN v.n % $7::int = 0 AND $3::text = 'odometer_km' THEN $8::int ELSE 0 END AS disagreed,
                 CASE WHEN v.n % $7::int = 0 AND $3::text = 'odometer_km' AND h.k = 1 THEN $12::int ELSE 0 END AS core_only,
                 15000 + (v.n * 7919 + h.k * 104729) % 15000 AS core_lag_ms,
                 10000 + (v.n * 6007 + h.k * 7901) % 15000 AS legacy_lag_ms,
                 (v.n % 50)::float8 AS at_s) r`,
      [fleet.workspaceId, ids, signal, base, seededHours, perHour, disagreeEvery, disagreedPerHour, underCoveredEvery, underCoveredAt, missingPerHour, coreOnlyLastHour],
    );
  }
  // Three readings core lacks of each under-covered vehicle and signal (it lacks the minutes ending in 1, 4 and 7):
  // minutes 1, 4 and 7 of the earliest complete hour of the window.
  await db.query(
    `INSERT INTO shadow_readings (workspace_id, vehicle_id, signal, side, observed_at, value, received_at, connection_id)
     SELECT $1, v.id, s.signal, 'legacy', t.at, ${valueSql('s.signal', 'v.n', 't.at')}, t.at + make_interval(secs => 10 + v.n % 15), $5
       FROM unnest($2::uuid[]) WITH ORDINALITY AS v(id, n)
      CROSS JOIN unnest($3::text[]) AS s(signal)
      CROSS JOIN LATERAL (SELECT $4::timestamptz - make_interval(hours => $6) + make_interval(mins => m, secs => (v.n % 50)::float8) AS at
                            FROM unnest(ARRAY[1, 4, 7]) AS m) t
      WHERE v.n % $7 = $8`,
    [fleet.workspaceId, ids, [...paritySignals], base, fleet.connectionId, parityWindowHours - 1, underCoveredEvery, underCoveredAt],
  );
  // Core's two odometer readings the legacy poller lacks, in the last hour: half a minute from any of its readings.
  await db.query(
    `INSERT INTO shadow_readings (workspace_id, vehicle_id, signal, side, observed_at, value, received_at, connection_id)
     SELECT $1, v.id, 'odometer_km', 'core', t.at, ${valueSql("'odometer_km'", 'v.n', 't.at')}, t.at + interval '20 seconds', $4
       FROM unnest($2::uuid[]) WITH ORDINALITY AS v(id, n)
      CROSS JOIN LATERAL (SELECT $3::timestamptz - interval '1 hour' + make_interval(mins => m, secs => (v.n % 50 + 30)::float8) AS at
                            FROM unnest(ARRAY[10, 20]) AS m) t
      WHERE v.n % $5 = 0`,
    [fleet.workspaceId, ids, base, fleet.connectionId, disagreeEvery],
  );
  const seed = {
    baseHourMs,
    disagreeing: new Set(ids.filter((_, i) => (i + 1) % disagreeEvery === 0)),
    underCovered: new Set(ids.filter((_, i) => (i + 1) % underCoveredEvery === underCoveredAt)),
  };
  const counts = await checkParitySeed(db, fleet.workspaceId, ids.length, seed);
  return { ...seed, ...counts, seconds: (Date.now() - started) / 1000 };
}

/**
 * The rules a row kept by parity-store.ts always meets, beyond the keys, checks and foreign keys the database holds
 * (vehicles are counted again all the same), unpaired readings within the window, and the sizes the seed should
 * have; throws on any row that breaks them.
 */
async function checkParitySeed(
  db: Database,
  workspaceId: string,
  vehicles: number,
  seed: { baseHourMs: number; disagreeing: ReadonlySet<string>; underCovered: ReadonlySet<string> },
): Promise<{ hourRows: number; unpairedRows: number }> {
  const { rows } = await db.query<{ hour_rows: string; broken: string; orphans: string; unpaired: string; stray: string }>(
    `SELECT (SELECT count(*) FROM parity_hours WHERE workspace_id = $1) AS hour_rows,
            (SELECT count(*) FROM parity_hours WHERE workspace_id = $1
                AND NOT (pairs <= least(core_count, legacy_count) AND agreed BETWEEN 0 AND pairs AND core_lag_ms >= 0 AND legacy_lag_ms >= 0
                         AND hour = date_bin('1 hour', hour, timestamptz '2000-01-01 00:00:00+00')
                         AND core_newest >= hour AND core_newest < hour + interval '1 hour'
                         AND legacy_newest >= hour AND legacy_newest < hour + interval '1 hour'
                         AND (example IS NULL) = (agreed = pairs))) AS broken,
            (SELECT count(*) FROM parity_hours h WHERE h.workspace_id = $1
                AND NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.workspace_id = h.workspace_id AND v.id = h.vehicle_id)) AS orphans,
            (SELECT count(*) FROM shadow_readings WHERE workspace_id = $1 AND matched_at IS NULL AND agreed IS NULL) AS unpaired,
            (SELECT count(*) FROM shadow_readings WHERE workspace_id = $1
                AND NOT (matched_at IS NULL AND received_at >= observed_at
                         AND observed_at >= $2::timestamptz - make_interval(hours => $3) AND observed_at < $2::timestamptz)) AS stray`,
    [workspaceId, new Date(seed.baseHourMs).toISOString(), parityWindowHours - 1],
  );
  const row = rows[0]!;
  const hourRows = Number(row.hour_rows);
  const unpairedRows = Number(row.unpaired);
  const expectedUnpaired = seed.underCovered.size * paritySignals.length * 3 + seed.disagreeing.size * coreOnlyLastHour;
  if (hourRows !== vehicles * paritySignals.length * seededHours || Number(row.broken) + Number(row.orphans) + Number(row.stray) > 0 || unpairedRows !== expectedUnpaired) {
    throw new Error(`parity seed is off: ${JSON.stringify(row)}, expected ${vehicles * paritySignals.length * seededHours} hour rows and ${expectedUnpaired} unpaired`);
  }
  return { hourRows, unpairedRows };
}

interface ParityAnswer {
  window: { hours: number; from: string; to: string };
  summary: { legacyReadings: number; coreReadings: number; pairs: number; agreed: number; coveragePct: number | null; agreementPct: number | null };
  worstVehicles: { vehicleId: string; worstSignal: string }[];
  differences: { vehicleId: string; kind: string }[];
  gate: { met: boolean; reasons: string[] };
}

/**
 * Throws unless the report says what the seed holds: the fleet's counts summed over the seeded hours its window
 * covers, the defective vehicles worst (the disagreeing first, in odometer_km) with their examples, and the gate
 * not met.
 */
export function checkParityReport(body: string, seed: ParitySeed, vehicles: number): void {
  const report = JSON.parse(body) as ParityAnswer;
  const from = Date.parse(report.window.from);
  const to = Date.parse(report.window.to);
  const hours = Array.from({ length: seededHours }, (_, i) => i + 1).filter((k) => seed.baseHourMs - k * hourMs >= from && seed.baseHourMs - k * hourMs < to);
  const all = vehicles * paritySignals.length * perHour;
  const missing = seed.underCovered.size * paritySignals.length * missingPerHour;
  const expected = {
    legacyReadings: hours.length * all,
    coreReadings: hours.length * (all - missing) + (hours.includes(1) ? seed.disagreeing.size * coreOnlyLastHour : 0),
    pairs: hours.length * (all - missing),
    agreed: hours.length * (all - missing - seed.disagreeing.size * disagreedPerHour),
  };
  const wrong: string[] = [];
  for (const key of ['legacyReadings', 'coreReadings', 'pairs', 'agreed'] as const) {
    if (report.summary[key] !== expected[key]) wrong.push(`summary.${key} ${report.summary[key]}, expected ${expected[key]}`);
  }
  // Disagreeing vehicles (50 % in odometer_km) rank before under-covered ones (70 % in every signal).
  const firstUnderCovered = Math.min(seed.disagreeing.size, report.worstVehicles.length);
  if (report.worstVehicles.length === 0) wrong.push('no worst vehicles');
  report.worstVehicles.forEach((v, rank) => {
    const fits = rank < firstUnderCovered ? seed.disagreeing.has(v.vehicleId) && v.worstSignal === 'odometer_km' : seed.underCovered.has(v.vehicleId);
    if (!fits) wrong.push(`worst vehicle ${rank + 1}, ${v.vehicleId} (${v.worstSignal}), is not one the seed made worst there`);
  });
  if (!report.differences.some((d) => d.kind === 'disagreement')) wrong.push('no disagreement among the differences');
  if (hours.includes(1) && !report.differences.some((d) => d.kind === 'missing_in_legacy')) wrong.push('no reading the legacy poller lacks among the differences');
  if (report.gate.met || !report.gate.reasons.some((r) => r.startsWith('coverage'))) wrong.push(`gate ${JSON.stringify(report.gate)}, expected not met for coverage`);
  if (wrong.length > 0) throw new Error(`parity report is wrong: ${wrong.join('; ')}`);
}
