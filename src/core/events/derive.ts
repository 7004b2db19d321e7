/**
 * The events a unit of work causes for one vehicle, from the snapshot it found and the readings it accepted: a state
 * change naming every signal it moved, charging started or stopped at each turn of `charging_state`, and each SoC
 * threshold of the workspace's policy crossed, up or down. Readings are walked in observed order, so a batch that
 * holds a whole evening still tells each turn; late readings (older than the snapshot) move nothing and tell nothing.
 */
import { randomUUID } from 'node:crypto';
import type { UpdateSource } from '../../canonical/update.ts';
import { vehicleSubject, type ChangedSignal, type EventDraft, type VehicleChargingChanged, type VehicleSocCrossed } from './catalogue.ts';

/** A reading this unit of work accepted (newer than the snapshot of its signal). */
export interface AcceptedReading {
  signal: string;
  value: unknown;
  observedMs: number;
  source: UpdateSource;
  provider: string;
}

export interface VehicleChange {
  workspaceId: string;
  vehicleId: string;
  /** The snapshot's values before this unit of work, where it had one. */
  before: { socPct?: number; chargingState?: string };
  accepted: readonly AcceptedReading[];
  /** The workspace's SoC thresholds, in percent. */
  socThresholdsPct: readonly number[];
}

/** Each workspace's thresholds in ascending order, distinct: worked out once per policy array, not once per vehicle. */
const ascendingThresholds = new WeakMap<readonly number[], readonly number[]>();
function ascending(thresholds: readonly number[]): readonly number[] {
  let sorted = ascendingThresholds.get(thresholds);
  if (!sorted) {
    sorted = [...new Set(thresholds)].sort((a, b) => a - b);
    ascendingThresholds.set(thresholds, sorted);
  }
  return sorted;
}

const byObserved = (a: AcceptedReading, b: AcceptedReading) => a.observedMs - b.observedMs;

export function vehicleEvents(change: VehicleChange, newId: () => string = randomUUID): EventDraft[] {
  const accepted = change.accepted;
  if (accepted.length === 0) return [];
  const { workspaceId, vehicleId } = change;
  const subject = vehicleSubject(vehicleId);
  let isoMs = Number.NaN;
  let isoText = '';
  const iso = (ms: number) => {
    if (ms !== isoMs) [isoMs, isoText] = [ms, new Date(ms).toISOString()];
    return isoText;
  };
  // Readings mostly come in observed order already: sorted (a copy) only when they do not.
  let ordered: readonly AcceptedReading[] = accepted;
  for (let i = 1; i < accepted.length; i += 1) {
    if (accepted[i]!.observedMs < accepted[i - 1]!.observedMs) {
      ordered = [...accepted].sort(byObserved);
      break;
    }
  }
  const turns: { ms: number; rank: number; draft: EventDraft }[] = [];
  const push = (ms: number, rank: number, type: EventDraft['type'], data: object) =>
    turns.push({ ms, rank, draft: { id: newId(), workspaceId, subject, type, time: iso(ms), data: data as Record<string, unknown> } });

  const thresholds = ascending(change.socThresholdsPct);
  const signals: Record<string, ChangedSignal> = {};
  let newestMs = Number.NEGATIVE_INFINITY;
  let charging = change.before.chargingState;
  let soc = change.before.socPct;
  // One walk in observed order: SoC crossings as each SoC comes, charging turns with the SoC known at that moment.
  for (const r of ordered) {
    signals[r.signal] = { value: r.value, observedAt: iso(r.observedMs), source: r.source, provider: r.provider };
    if (r.observedMs > newestMs) newestMs = r.observedMs;
    if (r.signal === 'soc_pct' && typeof r.value === 'number') {
      const next = r.value;
      if (soc !== undefined && next !== soc) {
        const up = next > soc;
        for (let k = 0; k < thresholds.length; k += 1) {
          const thresholdPct = up ? thresholds[k]! : thresholds[thresholds.length - 1 - k]!;
          if (up ? soc < thresholdPct && thresholdPct <= next : next < thresholdPct && thresholdPct <= soc) {
            const data: VehicleSocCrossed = { vehicleId, thresholdPct, direction: up ? 'up' : 'down', socPct: next, previousSocPct: soc, observedAt: iso(r.observedMs) };
            push(r.observedMs, 1, 'fleetwire.vehicle.soc.crossed', data);
          }
        }
      }
      soc = next;
    } else if (r.signal === 'charging_state' && typeof r.value === 'string') {
      const now = r.value;
      const started = now === 'charging' && charging !== 'charging';
      if (started || (now !== 'charging' && charging === 'charging')) {
        const data: VehicleChargingChanged = { vehicleId, chargingState: now, previousChargingState: charging ?? null, socPct: socAt(ordered, r.observedMs, change.before.socPct), observedAt: iso(r.observedMs) };
        push(r.observedMs, 0, started ? 'fleetwire.vehicle.charging.started' : 'fleetwire.vehicle.charging.stopped', data);
      }
      charging = now;
    }
  }
  push(newestMs, 2, 'fleetwire.vehicle.state.changed', { vehicleId, signals });
  if (turns.length === 1) return [turns[0]!.draft];
  return turns.sort((a, b) => a.ms - b.ms || a.rank - b.rank).map((t) => t.draft);
}

/** The SoC known at `ms`: the newest accepted at or before it (readings in observed order), else the snapshot's. */
function socAt(ordered: readonly AcceptedReading[], ms: number, before: number | undefined): number | null {
  let known: number | null = before ?? null;
  for (const r of ordered) {
    if (r.observedMs > ms) break;
    if (r.signal === 'soc_pct' && typeof r.value === 'number') known = r.value;
  }
  return known;
}
