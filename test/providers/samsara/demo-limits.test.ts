/**
 * The Samsara simulator of the demo and `fleetwire sim` (src/demo/simulators.ts) enforces Samsara's documented
 * limits (developers.samsara.com/docs/rate-limits: 150 requests a second per token): the demo's own polling (the
 * poll adapter every 15 s, seed.ts's policy) never meets a 429, and a burst does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { demoCredentials, demoFleetSizes, startDemoSimulators, type DemoProvider, type DemoSimulators } from '../../../src/demo/simulators.ts';
import { createSamsaraPollAdapter } from '../../../src/providers/samsara/adapter.ts';
import { drain, pollContext } from './support.ts';

let simulators: DemoSimulators | undefined;
afterEach(async () => {
  await simulators?.stop();
  simulators = undefined;
});

describe('the demo’s Samsara simulator', () => {
  it('lets the demo’s polling through and answers a burst with 429 and Retry-After', async () => {
    const clock = { now: Date.parse('2026-11-28T12:00:00.000Z') };
    const ports = Object.fromEntries(Object.keys(demoFleetSizes).map((provider) => [provider, 0])) as Record<DemoProvider, number>;
    simulators = await startDemoSimulators({ host: '127.0.0.1', ports, timeScale: 5, vehicles: demoFleetSizes, now: () => clock.now });
    const url = simulators.running.samsara.url;
    const apiToken = demoCredentials.samsara.apiToken;
    const adapter = createSamsaraPollAdapter({ now: () => clock.now });

    // Ten of the demo's polls, 15 s apart: none is rate limited (drain would throw).
    let cursor: unknown = null;
    for (let poll = 0; poll < 10; poll += 1) {
      const pages = await drain(adapter, pollContext(url, cursor, { credentials: { apiToken } }));
      cursor = pages.at(-1)!.cursor;
      clock.now += 15_000;
    }

    const burst = await Promise.all(
      Array.from({ length: 200 }, () => fetch(`${url}/fleet/vehicles/stats/feed?types=gps`, { headers: { authorization: `Bearer ${apiToken}` } })),
    );
    const limited = burst.filter((r) => r.status === 429);
    expect(limited).toHaveLength(50);
    for (const response of limited) expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    await Promise.all(burst.map((r) => r.arrayBuffer()));
  });
});
