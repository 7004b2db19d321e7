/**
 * What the dashboard knows, per vehicle, beyond its snapshot that a readiness estimate rests on: its SoC readings of
 * the last half hour (from loads, events and the history the panel read) and its battery capacity where its charging
 * sessions told it.
 */
import type { HistoryBucket, Vehicle } from './api-types.ts';
import type { Api } from './api.ts';
import { serverNow } from './clock.ts';
import { defaultTargetPct, rateWindowMs, readiness, type Readiness, type SocPoint } from './readiness.ts';

export interface ReadinessBook {
  targetPct: number;
  readonly capacities: Map<string, number>;
  of(vehicle: Vehicle): { readiness: Readiness; targetPct: number };
  /** Notes a vehicle's current SoC reading. */
  track(vehicle: Vehicle): void;
  /** Notes SoC readings from history. */
  add(vehicleId: string, points: readonly SocPoint[]): void;
  /**
   * Reads the last half hour of SoC of the charging vehicles that have no estimate yet (up to 100, four at a time),
   * so the table's estimates need no click; calls `primed` for each one learned.
   */
  prime(api: Api, workspaceId: string, vehicles: readonly Vehicle[], primed: (vehicleId: string) => boolean): Promise<void>;
  clear(): void;
}

/** Each bucket's newest reading: what a rate is measured between. */
export function bucketPoints(buckets: readonly HistoryBucket[]): SocPoint[] {
  return buckets.filter((b) => typeof b.last === 'number').map((b) => ({ t: Date.parse(b.lastObservedAt), v: b.last as number }));
}

export function createReadinessBook(): ReadinessBook {
  const trails = new Map<string, SocPoint[]>();
  const capacities = new Map<string, number>();

  function add(vehicleId: string, points: readonly SocPoint[]): void {
    const trail = trails.get(vehicleId) ?? [];
    for (const p of points) if (!trail.some((q) => q.t === p.t)) trail.push(p);
    const since = serverNow() - rateWindowMs;
    trails.set(vehicleId, trail.filter((p) => p.t >= since).sort((a, b) => a.t - b.t).slice(-60));
  }

  const book: ReadinessBook = {
    targetPct: defaultTargetPct,
    capacities,
    of(vehicle) {
      const num = (signal: string) => (typeof vehicle.signals[signal]?.value === 'number' ? (vehicle.signals[signal]!.value as number) : undefined);
      const charging = vehicle.signals.charging_state?.value;
      return {
        targetPct: book.targetPct,
        readiness: readiness({
          socPct: num('soc_pct'),
          targetPct: book.targetPct,
          chargingState: typeof charging === 'string' ? charging : undefined,
          powerKw: num('charge_power_kw'),
          capacityKwh: capacities.get(vehicle.id),
          recentSoc: trails.get(vehicle.id) ?? [],
          nowMs: serverNow(),
        }),
      };
    },
    track(vehicle) {
      const soc = vehicle.signals.soc_pct;
      if (soc && typeof soc.value === 'number') add(vehicle.id, [{ t: Date.parse(soc.observedAt), v: soc.value }]);
    },
    add,
    async prime(api, workspaceId, vehicles, primed) {
      const wanted = vehicles.filter((v) => v.signals.charging_state?.value === 'charging' && book.of(v).readiness.state === 'no_estimate').slice(0, 100);
      const from = encodeURIComponent(new Date(serverNow() - rateWindowMs).toISOString());
      for (let i = 0; i < wanted.length; i += 4) {
        const answers = await Promise.all(
          wanted.slice(i, i + 4).map(async (v) => ({
            id: v.id,
            items: (await api.get<{ items: HistoryBucket[] }>(`/v1/workspaces/${workspaceId}/vehicles/${v.id}/history?signal=soc_pct&bucket=5m&from=${from}&order=desc&limit=7`)).items,
          })),
        );
        for (const { id, items } of answers) {
          add(id, bucketPoints(items));
          // The caller says whether the answer still counts (the same workspace is shown).
          if (!primed(id)) return;
        }
      }
    },
    clear() {
      trails.clear();
      capacities.clear();
    },
  };
  return book;
}
