/**
 * Fault injection for the simulators: random faults at set rates (seeded, so a run can be replayed), faults
 * queued for the next requests (for tests that need one exact failure), and a full outage switch.
 */
export const faultKinds = ['rate_limit', 'server_error', 'timeout', 'malformed', 'truncated', 'auth'] as const;
export type FaultKind = (typeof faultKinds)[number];

/** Probability per request of each fault, 0..1. */
export type FaultRates = Partial<Record<FaultKind, number>>;

/** xorshift32 draws in [0, 1): deterministic per seed, so a simulator run can be replayed. */
export function xorshift32(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
}

export class FaultInjector {
  private rates: FaultRates;
  private readonly queued: FaultKind[] = [];
  private outage: FaultKind | undefined;
  private readonly random: () => number;
  readonly injected: Record<FaultKind, number> = { rate_limit: 0, server_error: 0, timeout: 0, malformed: 0, truncated: 0, auth: 0 };

  constructor(rates: FaultRates = {}, seed = 1) {
    this.rates = { ...rates };
    this.random = xorshift32(seed);
  }

  setRates(rates: FaultRates): void {
    this.rates = { ...rates };
  }

  /** The next `count` requests fail with `kind`, before any random fault. */
  queue(kind: FaultKind, count = 1): void {
    for (let i = 0; i < count; i += 1) this.queued.push(kind);
  }

  /** Every request fails with `kind` until `endOutage`. */
  startOutage(kind: FaultKind = 'server_error'): void {
    this.outage = kind;
  }

  endOutage(): void {
    this.outage = undefined;
  }

  /** The fault for this request, if any. */
  next(): FaultKind | undefined {
    const fault = this.queued.shift() ?? this.outage ?? this.roll();
    if (fault) this.injected[fault] += 1;
    return fault;
  }

  private roll(): FaultKind | undefined {
    for (const kind of faultKinds) {
      const rate = this.rates[kind] ?? 0;
      if (rate > 0 && this.random() < rate) return kind;
    }
    return undefined;
  }
}
