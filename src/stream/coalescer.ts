/**
 * Per-vehicle coalescing (DESIGN §7): the readings of one device over a short window (default 1 s) become one
 * update holding the newest value of each signal. What a newer reading replaces, or a repeat of one already held,
 * is counted as coalesced: every reading taken in is either passed on or counted here.
 */
import type { CanonicalReading, CanonicalUpdate } from '../canonical/update.ts';

interface Window {
  openedAt: number;
  update: CanonicalUpdate;
  readings: Map<string, { reading: CanonicalReading; observedMs: number }>;
}

export class Coalescer {
  private readonly windows = new Map<string, Window>();
  private readonly coalescedBy = new Map<string, number>();
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly emit: (update: CanonicalUpdate) => void,
  ) {}

  start(): void {
    if (this.timer || this.windowMs <= 0) return;
    this.timer = setInterval(() => this.flushDue(Date.now()), Math.max(10, Math.min(100, this.windowMs / 4)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flushAll();
  }

  add(update: CanonicalUpdate): void {
    if (this.windowMs <= 0) {
      this.emit(update);
      return;
    }
    const key = `${update.connectionId}|${update.externalDeviceId}`;
    let window = this.windows.get(key);
    if (!window) {
      window = { openedAt: Date.now(), update, readings: new Map() };
      this.windows.set(key, window);
    }
    window.update = { ...update, readings: [] };
    for (const reading of update.readings) {
      const observedMs = Date.parse(reading.observedAt);
      const held = window.readings.get(reading.signal);
      if (held && held.observedMs >= observedMs) {
        // An older or repeated value of a signal already held.
        this.count(update.connectionId, 1);
        continue;
      }
      if (held) this.count(update.connectionId, 1);
      else this.pending += 1;
      window.readings.set(reading.signal, { reading, observedMs });
    }
  }

  /** Readings held in open windows. */
  get held(): number {
    return this.pending;
  }

  heldFor(connectionId: string): number {
    let n = 0;
    for (const window of this.windows.values()) if (window.update.connectionId === connectionId) n += window.readings.size;
    return n;
  }

  coalescedFor(connectionId: string): number {
    return this.coalescedBy.get(connectionId) ?? 0;
  }

  get coalesced(): number {
    let n = 0;
    for (const count of this.coalescedBy.values()) n += count;
    return n;
  }

  flushAll(): void {
    for (const key of [...this.windows.keys()]) this.flush(key);
  }

  private flushDue(now: number): void {
    for (const [key, window] of this.windows) if (now - window.openedAt >= this.windowMs) this.flush(key);
  }

  private flush(key: string): void {
    const window = this.windows.get(key);
    if (!window) return;
    this.windows.delete(key);
    this.pending -= window.readings.size;
    this.emit({ ...window.update, readings: [...window.readings.values()].map((held) => held.reading) });
  }

  private count(connectionId: string, n: number): void {
    this.coalescedBy.set(connectionId, (this.coalescedBy.get(connectionId) ?? 0) + n);
  }
}
