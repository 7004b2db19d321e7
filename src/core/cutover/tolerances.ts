/**
 * When two readings of one signal, one from core's polling and one from the legacy poller, agree: within 0.5
 * percentage points of state of charge, 0.1 km of odometer, 25 m of location, and exactly for states (the cutover
 * issue's tolerances). The issue names no tolerance for the other numeric signals; the ones here are a unit of
 * their reporting resolution (docs/OPERATIONS.md, "Migrating a workspace").
 */
import { signalNames, type SignalName } from '../../canonical/signals.ts';

export type Tolerance = { kind: 'number'; within: number } | { kind: 'metres'; within: number } | { kind: 'exact' };

export const parityTolerances: Record<SignalName, Tolerance> = {
  soc_pct: { kind: 'number', within: 0.5 },
  odometer_km: { kind: 'number', within: 0.1 },
  location: { kind: 'metres', within: 25 },
  heading_deg: { kind: 'number', within: 1 },
  speed_kph: { kind: 'number', within: 1 },
  range_km: { kind: 'number', within: 1 },
  battery_temp_c: { kind: 'number', within: 0.5 },
  charge_power_kw: { kind: 'number', within: 0.5 },
  tracker_battery_pct: { kind: 'number', within: 1 },
  charging_state: { kind: 'exact' },
  plugged_in: { kind: 'exact' },
  ignition: { kind: 'exact' },
  connectivity_state: { kind: 'exact' },
};

const number = (value: string) => `(CASE WHEN jsonb_typeof(${value}) = 'number' THEN (${value} #>> '{}')::float8 END)`;
const coordinate = (value: string, key: 'lat' | 'lon') => `radians((${value} ->> '${key}')::float8)`;

/** Great-circle metres between two location values (haversine, mean Earth radius). */
function metresSql(a: string, b: string): string {
  const [lat1, lat2] = [coordinate(a, 'lat'), coordinate(b, 'lat')];
  const [lon1, lon2] = [coordinate(a, 'lon'), coordinate(b, 'lon')];
  return `(2 * 6371008.8 * asin(least(1, sqrt(power(sin((${lat2} - ${lat1}) / 2), 2) + cos(${lat1}) * cos(${lat2}) * power(sin((${lon2} - ${lon1}) / 2), 2)))))`;
}

/**
 * SQL that is true when jsonb values `a` and `b` of signal `signal` agree: a number compared within its tolerance
 * (a value that is not a number, as the catalogue never lets through, compared exactly), the rest exactly.
 */
export function agreementSql(signal: string, a: string, b: string): string {
  const branches = signalNames.map((name) => {
    const tolerance = parityTolerances[name];
    if (tolerance.kind === 'exact') return `WHEN '${name}' THEN ${a} = ${b}`;
    if (tolerance.kind === 'metres') return `WHEN '${name}' THEN ${metresSql(a, b)} <= ${tolerance.within}`;
    return `WHEN '${name}' THEN COALESCE(abs(${number(a)} - ${number(b)}) <= ${tolerance.within} + 1e-9, ${a} = ${b})`;
  });
  return `(CASE ${signal} ${branches.join(' ')} ELSE ${a} = ${b} END)`;
}
