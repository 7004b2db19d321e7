/**
 * Step 5 of the ingest handler (DESIGN §4), as a pure function: given the readings of a batch that passed every
 * check that needs no stored state, and the snapshot of their vehicles, decide for each reading whether it
 * advances the snapshot (`accepted`), only joins history (`late`), repeats a reading of this batch
 * (`duplicate`), or contradicts a counter (`implausible_value`).
 *
 * Readings of one vehicle and signal are applied in observed-time order (ties keep batch order), so the outcome
 * does not depend on how a sender ordered its batch. Duplicates of readings already in history are found by the
 * unit of work's insert; this function only sees the batch.
 */
import { nonDecreasingRule, type SignalName } from '../../canonical/signals.ts';

export interface Candidate {
  /** Position of the reading in the caller's list; outcomes come back under the same position. */
  position: number;
  vehicleId: string;
  signal: SignalName;
  value: unknown;
  observedMs: number;
}

export interface SnapshotPoint {
  observedMs: number;
  value: unknown;
}

export type Classification =
  | { status: 'accepted' | 'late' | 'duplicate' }
  | { status: 'rejected'; reason: 'implausible_value'; detail: string };

export const snapshotKey = (vehicleId: string, signal: string) => `${vehicleId}|${signal}`;

export function classifyReadings(candidates: readonly Candidate[], snapshot: ReadonlyMap<string, SnapshotPoint>): Classification[] {
  const outcomes: Classification[] = new Array(candidates.length);
  const groups = new Map<string, Candidate[]>();
  for (const candidate of candidates) {
    const key = snapshotKey(candidate.vehicleId, candidate.signal);
    const group = groups.get(key);
    if (group) group.push(candidate);
    else groups.set(key, [candidate]);
  }

  for (const [key, group] of groups) {
    group.sort((a, b) => a.observedMs - b.observedMs || a.position - b.position);
    const rule = nonDecreasingRule(group[0]!.signal);
    const stored = snapshot.get(key);
    // The newest point known so far: the stored snapshot, then each reading this batch accepts.
    let newest: SnapshotPoint | undefined = stored;
    const seen = new Set<number>();
    for (const candidate of group) {
      if (seen.has(candidate.observedMs)) {
        outcomes[candidate.position] = { status: 'duplicate' };
        continue;
      }
      const isNewer = newest === undefined || candidate.observedMs > newest.observedMs;
      if (rule && newest !== undefined) {
        const value = candidate.value as number;
        const reference = newest.value as number;
        if (isNewer && value < reference - rule.tolerance) {
          outcomes[candidate.position] = implausible(`${candidate.signal} ${value} is below ${reference} observed earlier at ${new Date(newest.observedMs).toISOString()}`);
          continue;
        }
        if (!isNewer && value > reference + rule.tolerance) {
          outcomes[candidate.position] = implausible(`${candidate.signal} ${value} is above ${reference} observed later at ${new Date(newest.observedMs).toISOString()}`);
          continue;
        }
      }
      seen.add(candidate.observedMs);
      if (isNewer) {
        newest = { observedMs: candidate.observedMs, value: candidate.value };
        outcomes[candidate.position] = { status: 'accepted' };
      } else {
        outcomes[candidate.position] = { status: 'late' };
      }
    }
  }
  return outcomes;
}

function implausible(detail: string): Classification {
  return { status: 'rejected', reason: 'implausible_value', detail: `${detail}; this counter never runs backwards` };
}
