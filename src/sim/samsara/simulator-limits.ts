/**
 * Samsara's documented rate limits ("Rate Limits" guide, developers.samsara.com/docs/rate-limits; per-endpoint
 * figures from the official SDK's method docs, @samsarahq/samsara 11.11.1), as token buckets the simulator checks
 * before it answers. Each bucket holds one second's worth and refills continuously; a request that finds any of
 * its buckets empty gets 429 with `Retry-After` in fractional seconds (the guide's example: `0.40235`) and spends
 * nothing.
 */

/** What Samsara documents. The vehicle-stats endpoints name no limit of their own, so only the global ones apply. */
export const samsaraRateLimits = {
  /** "Each API access token may make 150 API requests per second." */
  perTokenPerSecond: 150,
  /** "Each organization may make 200 API requests per second." */
  perOrganizationPerSecond: 200,
  /** Per organization, on top of the global limits: `GET /fleet/vehicles` "Rate limit: 25 requests/sec" (SDK vehicles.list). */
  endpointsPerSecond: { '/fleet/vehicles': 25 } as Readonly<Record<string, number>>,
} as const;

export interface RateLimitSettings {
  /** Requests per second per API token; unlimited when absent. */
  perTokenPerSecond?: number;
  /** Requests per second per organization (all tokens of one simulated fleet); unlimited when absent. */
  perOrganizationPerSecond?: number;
  /** Requests per second per organization on one path. */
  endpointsPerSecond?: Readonly<Record<string, number>>;
}

interface Bucket {
  rate: number;
  tokens: number;
  atMs: number;
}

export interface RateLimiter {
  /** Undefined when the request may go ahead (and is then counted), else the wait in seconds as Samsara writes it. */
  check(token: string, organization: object, path: string): string | undefined;
}

export function createRateLimiter(settings: RateLimitSettings, now: () => number): RateLimiter {
  const byToken = new Map<string, Bucket>();
  const byOrganization = new WeakMap<object, Bucket>();
  const byEndpoint = new WeakMap<object, Map<string, Bucket>>();
  const bucket = <K>(map: { get(key: K): Bucket | undefined; set(key: K, value: Bucket): unknown }, key: K, rate: number) => {
    let found = map.get(key);
    if (!found) {
      found = { rate, tokens: rate, atMs: now() };
      map.set(key, found);
    }
    return found;
  };

  return {
    check(token, organization, path) {
      const buckets: Bucket[] = [];
      if (settings.perTokenPerSecond) buckets.push(bucket(byToken, token, settings.perTokenPerSecond));
      if (settings.perOrganizationPerSecond) buckets.push(bucket(byOrganization, organization, settings.perOrganizationPerSecond));
      const endpointRate = settings.endpointsPerSecond?.[path];
      if (endpointRate) {
        let paths = byEndpoint.get(organization);
        if (!paths) {
          paths = new Map();
          byEndpoint.set(organization, paths);
        }
        buckets.push(bucket(paths, path, endpointRate));
      }
      const at = now();
      let waitSeconds = 0;
      for (const b of buckets) {
        b.tokens = Math.min(b.rate, b.tokens + (Math.max(0, at - b.atMs) / 1000) * b.rate);
        b.atMs = at;
        if (b.tokens < 1) waitSeconds = Math.max(waitSeconds, (1 - b.tokens) / b.rate);
      }
      if (waitSeconds > 0) return String(Number(Math.max(0.001, waitSeconds).toFixed(5)));
      for (const b of buckets) b.tokens -= 1;
      return undefined;
    },
  };
}
