/**
 * Charge readiness: a vehicle's state of charge against its target (the workspace policy's upper SoC threshold, else
 * 80 %), and how long until it gets there, where the data allows an estimate:
 * - from the charging power and the battery's capacity, when both are known (the capacity is learned from the
 *   vehicle's reported charging sessions: energy over the SoC it added);
 * - else from how fast its SoC rose over the last half hour of readings while charging.
 * Otherwise it says plainly that there is no estimate, and why. Both assume the rate holds to the target: chargers
 * taper near full, so an estimate to a high target is a lower bound.
 */
import type { ChargingSession } from './api-types.ts';

export const defaultTargetPct = 80;
/** SoC readings this recent tell the rate; older ones may predate a change of charger or of power. */
export const rateWindowMs = 30 * 60_000;
/** A rise must span at least this long to be a rate rather than one reading's rounding. */
const minRateSpanMs = 5 * 60_000;

export interface SocPoint {
  t: number;
  v: number;
}

export interface ReadinessInput {
  socPct: number | undefined;
  targetPct: number;
  chargingState: string | undefined;
  powerKw: number | undefined;
  capacityKwh: number | undefined;
  /** Recent SoC readings, any order. */
  recentSoc: readonly SocPoint[];
  nowMs: number;
}

export type Readiness =
  | { state: 'unknown'; text: string }
  | { state: 'ready'; text: string }
  | { state: 'estimate'; minutes: number; basis: 'power' | 'soc_rate'; text: string }
  | { state: 'no_estimate'; text: string };

/** The charge target: the highest SoC threshold of the workspace's policy, else 80 %. */
export function chargeTarget(socThresholdsPct: readonly number[] | undefined): number {
  return socThresholdsPct && socThresholdsPct.length > 0 ? Math.max(...socThresholdsPct) : defaultTargetPct;
}

/** The battery's usable capacity from the newest session that added at least 10 % and reported its energy. */
export function capacityFromSessions(sessions: readonly ChargingSession[]): number | undefined {
  for (const s of sessions) {
    if (s.energyKwh === null || s.startSocPct === null || s.endSocPct === null) continue;
    const added = s.endSocPct - s.startSocPct;
    if (added >= 10 && s.energyKwh > 0) return s.energyKwh / (added / 100);
  }
  return undefined;
}

/** SoC percentage points per minute over the recent readings, when they show a rise over long enough. */
export function socRatePerMinute(points: readonly SocPoint[], nowMs: number): number | undefined {
  const recent = points.filter((p) => p.t >= nowMs - rateWindowMs && p.t <= nowMs).sort((a, b) => a.t - b.t);
  const first = recent[0];
  const last = recent[recent.length - 1];
  if (!first || !last || last.t - first.t < minRateSpanMs) return undefined;
  const rate = (last.v - first.v) / ((last.t - first.t) / 60_000);
  return rate > 0 ? rate : undefined;
}

export function duration(minutes: number): string {
  const m = Math.max(1, Math.round(minutes));
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export function readiness(input: ReadinessInput): Readiness {
  const { socPct, targetPct } = input;
  if (socPct === undefined) return { state: 'unknown', text: 'no SoC reported' };
  if (socPct >= targetPct) return { state: 'ready', text: `ready (target ${targetPct} %)` };
  const toGo = targetPct - socPct;
  if (input.chargingState !== 'charging') return { state: 'no_estimate', text: `no estimate: not charging (${toGo.toFixed(0)} % to ${targetPct} %)` };
  if (input.powerKw !== undefined && input.powerKw > 0 && input.capacityKwh !== undefined) {
    const minutes = ((toGo / 100) * input.capacityKwh * 60) / input.powerKw;
    return { state: 'estimate', minutes, basis: 'power', text: `≈ ${duration(minutes)} to ${targetPct} % at ${input.powerKw.toFixed(0)} kW` };
  }
  const rate = socRatePerMinute(input.recentSoc, input.nowMs);
  if (rate !== undefined) {
    const minutes = toGo / rate;
    return { state: 'estimate', minutes, basis: 'soc_rate', text: `≈ ${duration(minutes)} to ${targetPct} % (SoC +${(rate * 60).toFixed(0)} %/h)` };
  }
  return { state: 'no_estimate', text: 'no estimate: charging, but no battery size or recent SoC rise to go by' };
}
