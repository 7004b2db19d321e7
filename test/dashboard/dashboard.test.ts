/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core): sign in with a workspace key,
 * see the vehicle table fill, filter to stale vehicles, open a vehicle's chart, and keep a screenshot as a test
 * artifact (test-results/).
 */
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { launchBrowser } from '../support/browser.ts';

let core: TestCore;
let browser: Browser;
let fleet: TestFleet;
let key: string;
let seededAt: number;

beforeAll(async () => {
  core = await startTestCore();
  fleet = await createFleet(core.db, core.secretKey, { vehicles: 6, name: 'Browser depot' });
  // An hour of state of charge and speed for every vehicle, one reading a minute.
  const now = Date.now();
  seededAt = now;
  await ingestBatch(
    core.db,
    fleet.vehicles.map((_, i) =>
      update(
        fleet,
        [
          ...Array.from({ length: 60 }, (_, m) => [
            { signal: 'soc_pct', value: 90 - m * 0.5 - i, observedAt: now - (60 - m) * 60_000 },
            { signal: 'speed_kph', value: (m * 7 + i * 11) % 80, observedAt: now - (60 - m) * 60_000 },
          ]).flat(),
          { signal: 'location', value: { lat: 52.5 + i / 100, lon: 13.4 }, observedAt: now - 60_000 },
          { signal: 'charging_state', value: i % 2 ? 'charging' : 'not_charging', observedAt: now - 60_000 },
        ],
        { vehicle: i },
      ),
    ),
  );
  // Two vehicles fell behind: their last sync was ten minutes ago; one never reported.
  await core.db.query(`UPDATE vehicles SET last_synced_at = now() - interval '10 minutes' WHERE id = ANY($1::uuid[])`, [[fleet.vehicles[1]!.id, fleet.vehicles[4]!.id]]);
  await core.db.query('UPDATE vehicles SET last_synced_at = NULL, last_observed_at = NULL WHERE id = $1', [fleet.vehicles[5]!.id]);
  await core.db.query('DELETE FROM signal_snapshot WHERE vehicle_id = $1', [fleet.vehicles[5]!.id]);
  key = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, { name: 'browser' })).body.key;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await core?.close();
});

describe('dashboard', () => {
  it('signs in, fills the vehicle table, filters to stale vehicles and shows a vehicle chart', async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });

    const answer = await page.goto(core.url);
    expect(answer?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.fill('#token', 'fwk_not_a_key_of_ours');
    await page.click('#signin-form button');
    await expect.poll(async () => page.textContent('#signin-error')).toMatch(/not accepted/);
    // The refused key's 401 is the browser's console error we asked for; anything after it is not.
    problems.length = 0;

    await page.fill('#token', key);
    await page.click('#signin-form button');
    await page.waitForSelector('[data-testid=vehicle-row]');
    await expect.poll(async () => page.locator('[data-testid=vehicle-row]').count()).toBe(6);
    expect(await page.textContent('#workspace-name')).toBe('Browser depot');
    expect(await page.textContent('#count-stale')).toBe('2');
    expect(await page.textContent('#count-never')).toBe('1');
    expect(await page.textContent('[data-testid=workspace-status]')).toBe('degraded');

    await page.click('[data-filter=stale]');
    await expect.poll(async () => page.locator('[data-testid=vehicle-row]').count()).toBe(2);
    const statuses = await page.locator('[data-testid=vehicle-status]').allTextContents();
    expect(statuses).toEqual(['stale', 'stale']);

    await page.locator('[data-testid=vehicle-row]').first().click();
    await page.waitForSelector('#chart svg polyline.soc-line');
    await page.waitForSelector('#chart svg polyline.speed-line');
    // The day's chart is drawn from 5 min buckets: one point for each bucket the hour of readings fell in.
    const points = await page.getAttribute('#chart svg polyline.soc-line', 'points');
    const buckets = new Set(Array.from({ length: 60 }, (_, m) => Math.floor((seededAt - (60 - m) * 60_000) / 300_000)));
    expect(points!.split(' ').length).toBe(buckets.size);

    await page.click('[data-filter=all]');
    await page.click('th[data-sort=soc]');
    await expect.poll(async () => page.getAttribute('th[data-sort=soc]', 'aria-sort')).toBe('ascending');

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: `test-results/dashboard-${backend}.png`, fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });
});
