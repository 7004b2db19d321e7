/**
 * A stopped scheduler in the dashboard (issue "the operator's day", acceptance): no scheduled event for two poll
 * intervals turns the workspace's poll connection to `scheduler_silent` in the connections panel and names it in the
 * summary's reasons, in a real browser against a real core, on the core's injected clock; the next scheduled event
 * turns the panel back to ok.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepTransitions } from '../../src/core/events/transition-sweeper.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update } from '../support/fleet.ts';
import { launchBrowser } from '../support/browser.ts';

const within = { timeout: 15_000, interval: 100 };
let core: TestCore;
let browser: Browser;

beforeAll(async () => {
  core = await startTestCore();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await core?.close();
});

let eventNumber = 0;
async function scheduledEventArrives(): Promise<void> {
  const answer = await core.http.service('POST', '/internal/v1/scheduled-events', {
    version: '0',
    id: `dashboard-scheduler-${(eventNumber += 1)}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.scheduler',
    time: new Date(core.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    detail: {},
  });
  expect(answer.status).toBe(202);
}

describe('a stopped scheduler in the dashboard', () => {
  it('shows the poll connection scheduler_silent and says so in the summary, then ok with the next event', async () => {
    const policy = { ...defaultPolicy, pollIntervalSeconds: 60, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600 };
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 2, policy, name: 'Scheduler depot' });
    await scheduledEventArrives();
    const at = core.clock.now() - 1000;
    await ingestBatch(core.db, fleet.vehicles.map((_, i) => update(fleet, [{ signal: 'soc_pct', value: 60 + i, observedAt: at }], { vehicle: i })), { now: core.clock.now() });
    await sweepTransitions(core.db, core.clock.now());
    const key = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, { name: 'board' })).body.key as string;

    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`${core.url}/#key=${key}`);
      const badge = page.locator('[data-testid=connection] .badge');
      await expect.poll(() => badge.textContent(), within).toBe('ok');

      // No scheduled event for two poll intervals and a little more: the sweep tells the connection's turn, and
      // the page, live on the event stream, shows it without a reload.
      core.clock.advance(125_000);
      try {
        await sweepTransitions(core.db, core.clock.now());
        // The badge words the status for a person (scheduler_silent as "scheduler silent").
        await expect.poll(() => badge.textContent(), within).toBe('scheduler silent');
        await expect.poll(async () => (await page.textContent('#reasons')) ?? '', within).toContain('scheduler_silent');

        await scheduledEventArrives();
        await sweepTransitions(core.db, core.clock.now());
        await expect.poll(() => badge.textContent(), within).toBe('ok');
      } finally {
        core.clock.reset();
      }
    } finally {
      await context.close();
    }
  });
});
