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

export function vehicleEvents(change: VehicleChange, newId: () => string = randomUUID): EventDraft[] {
  if (change.accepted.length === 0) return [];
  const { workspaceId, vehicleId } = change;
  const subject = vehicleSubject(vehicleId);
  // A unit of work's readings mostly share one time, and every event names it again: format each time once.
  let isoMs = Number.NaN;
  let isoText = '';
  const iso = (ms: number) => {
    if (ms !== isoMs) [isoMs, isoText] = [ms, new Date(ms).toISOString()];
    return isoText;
  };
  const timed: { ms: number; rank: number; draft: EventDraft }[] = [];
  const push = (ms: number, rank: number, type: EventDraft['type'], data: object) =>
    timed.push({ ms, rank, draft: { id: newId(), workspaceId, subject, type, time: iso(ms), data: data as Record<string, unknown> } });

  const ordered = [...change.accepted].sort((a, b) => a.observedMs - b.observedMs);
  const socs = ordered.filter((r) => r.signal === 'soc_pct' && typeof r.value === 'number');
  /** The SoC known at `ms`: the newest accepted at or before it, else the snapshot's. */
  const socAt = (ms: number): number | null => {
    let known: number | null = change.before.socPct ?? null;
    for (const r of socs) if (r.observedMs <= ms) known = r.value as number;
    return known;
  };

  let charging = change.before.chargingState;
  for (const r of ordered) {
    if (r.signal !== 'charging_state' || typeof r.value !== 'string') continue;
    const now = r.value;
    const started = now === 'charging' && charging !== 'charging';
    const stopped = now !== 'charging' && charging === 'charging';
    if (started || stopped) {
      const data: VehicleChargingChanged = { vehicleId, chargingState: now, previousChargingState: charging ?? null, socPct: socAt(r.observedMs), observedAt: iso(r.observedMs) };
      push(r.observedMs, 0, started ? 'fleetwire.vehicle.charging.started' : 'fleetwire.vehicle.charging.stopped', data);
    }
    charging = now;
  }

  const thresholds = [...new Set(change.socThresholdsPct)].sort((a, b) => a - b);
  let soc = change.before.socPct;
  for (const r of socs) {
    const next = r.value as number;
    if (soc !== undefined && next !== soc) {
      const up = next > soc;
      const crossed = up ? thresholds.filter((t) => soc! < t && t <= next) : thresholds.filter((t) => next < t && t <= soc!).reverse();
      for (const thresholdPct of crossed) {
        const data: VehicleSocCrossed = { vehicleId, thresholdPct, direction: up ? 'up' : 'down', socPct: next, previousSocPct: soc, observedAt: iso(r.observedMs) };
        push(r.observedMs, 1, 'fleetwire.vehicle.soc.crossed', data);
      }
    }
    soc = next;
  }

  const signals: Record<string, ChangedSignal> = {};
  let newestMs = Number.NEGATIVE_INFINITY;
  for (const r of ordered) {
    signals[r.signal] = { value: r.value, observedAt: iso(r.observedMs), source: r.source, provider: r.provider };
    newestMs = Math.max(newestMs, r.observedMs);
  }
  push(newestMs, 2, 'fleetwire.vehicle.state.changed', { vehicleId, signals });

  return timed.sort((a, b) => a.ms - b.ms || a.rank - b.rank).map((t) => t.draft);
}
