/** Comparing what an adapter decoded with what a simulator served, within the rounding both may apply. */
import { expect } from 'vitest';

/** Numbers within 0.0005, locations within 0.000002 degrees (lat and lon together), anything else equal. */
export function expectSameValue(actual: unknown, expected: unknown, key: string) {
  if (typeof expected === 'number') {
    expect(actual, key).toBeTypeOf('number');
    expect(Math.abs((actual as number) - expected), key).toBeLessThanOrEqual(0.0005);
  } else if (expected !== null && typeof expected === 'object') {
    const e = expected as { lat: number; lon: number };
    const a = actual as { lat: number; lon: number };
    expect(Math.abs(a.lat - e.lat) + Math.abs(a.lon - e.lon), key).toBeLessThanOrEqual(0.000002);
  } else {
    expect(actual, key).toEqual(expected);
  }
}
