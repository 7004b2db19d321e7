/**
 * What a simulator served, in canonical terms: every reading it put on the wire, converted back by the
 * simulator's own arithmetic (not the adapter's). Tests compare the store against this to prove that nothing was
 * lost and nothing duplicated.
 */
import type { SignalName } from '../canonical/signals.ts';

export interface ServedReading {
  /** The simulator account (token, database) that was served. */
  account: string;
  externalDeviceId: string;
  signal: SignalName;
  value: unknown;
  observedAtMs: number;
}

export const servedKey = (r: Pick<ServedReading, 'externalDeviceId' | 'signal' | 'observedAtMs'>) =>
  `${r.externalDeviceId}|${r.signal}|${r.observedAtMs}`;

export class GroundTruth {
  private readonly records: ServedReading[] = [];

  record(reading: ServedReading): void {
    this.records.push(reading);
  }

  /** Every reading served, in order, repeats included (a re-read from an old cursor serves twice). */
  all(account?: string): ServedReading[] {
    return account === undefined ? [...this.records] : this.records.filter((r) => r.account === account);
  }

  /** One entry per (device, signal, observed time): what the store should hold. */
  unique(account?: string): Map<string, ServedReading> {
    const map = new Map<string, ServedReading>();
    for (const r of this.all(account)) if (!map.has(servedKey(r))) map.set(servedKey(r), r);
    return map;
  }

  clear(): void {
    this.records.length = 0;
  }
}
