/**
 * The dashboard on the screens a depot runs it on, in a real browser (Debian's Chromium driven by playwright-core):
 * the admin token opens on the fleet overview (every workspace with its health), not on one workspace; the map shows
 * a marker for every located vehicle, coloured by status, with no tile server reachable; at 1,920, 1,366 and 390 px
 * wide no column is clipped and nothing scrolls sideways (screenshots of each view at each width are kept in a
 * temporary folder, named in the test output); and a device the providers report is bound from the onboarding page
 * and its vehicle fills as its readings arrive.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { launchBrowser } from '../support/browser.ts';
import { clipped } from './clipping.ts';

const within = { timeout: 10_000, interval: 50 };
const widths = [1920, 1366, 390] as const;
const shots = mkdtempSync(join(tmpdir(), `fleetwire-dashboard-${backend}-`));
let core: TestCore;
let browser: Browser;
let depot: TestFleet;
let quiet: TestFleet;
/** Vehicles of the depot with a location (all but the last, which never reported). */
let located: string[];

beforeAll(async () => {
  core = await startTestCore();
  // A long name and long reasons are what cut columns: the depot has both.
  depot = await createFleet(core.db, core.secretKey, { vehicles: 8, name: 'North depot with a rather long workspace name' });
  quiet = await createFleet(core.db, core.secretKey, { vehicles: 2, name: 'Quiet yard' });
  const now = core.clock.now();
  await ingestBatch(
    core.db,
    depot.vehicles.slice(0, 7).map((_, i) =>
      update(
        depot,
        [
          ...Array.from({ length: 30 }, (_, m) => ({ signal: 'soc_pct', value: 40 + m + i, observedAt: now - (30 - m) * 60_000 })),
          { signal: 'location', value: { lat: 52.45 + i / 50, lon: 13.3 + i / 40 }, observedAt: now - 60_000 },
          { signal: 'charging_state', value: i % 2 ? 'charging' : 'not_charging', observedAt: now - 60_000 },
          { signal: 'charge_power_kw', value: i % 2 ? 11 : 0, observedAt: now - 60_000 },
          { signal: 'speed_kph', value: i * 9, observedAt: now - 60_000 },
        ],
        { vehicle: i },
      ),
    ),
    { now },
  );
  await core.db.query(`UPDATE vehicles SET last_synced_at = now() - interval '10 minutes' WHERE id = $1`, [depot.vehicles[2]!.id]);
  await core.db.query(`UPDATE vehicles SET name = 'Articulated electric bus with a very long fleet name 0001' WHERE id = $1`, [depot.vehicles[1]!.id]);
  located = depot.vehicles.slice(0, 7).map((v) => v.id);
  // A device nobody bound, which stays waiting on the onboarding page while its layout is measured.
  const stray = update(depot, [{ signal: 'soc_pct', value: 51, observedAt: now - 45_000 }, { signal: 'odometer_km', value: 123_456.7, observedAt: now - 45_000 }], { externalDeviceId: 'dev-stray-with-a-long-external-identifier-0042' });
  expect((await core.http.service('POST', '/internal/v1/ingest', { updates: [stray] })).status).toBe(200);
  browser = await launchBrowser();
  process.stdout.write(`dashboard screenshots: ${shots}\n`);
});

afterAll(async () => {
  await browser?.close();
  await core?.close();
});

async function openAsAdmin(width: number): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(`${core.url}/#key=${core.adminToken}`);
  return { page, problems, close: () => context.close() };
}

describe('the dashboard on every screen', () => {
  it('opens the admin on the fleet overview, every workspace with its health', async () => {
    const { page, problems, close } = await openAsAdmin(1366);
    await page.waitForSelector('[data-testid=fleet-overview]:not([hidden]) [data-testid=workspace-row]');
    expect(await page.isHidden('#workspace')).toBe(true);
    const rows = page.locator('[data-testid=workspace-row]');
    await expect.poll(() => rows.count(), within).toBe(2);
    const health = (await core.http.admin('GET', '/v1/health')).body as { items: { workspaceId: string; status: string }[] };
    // Worst first, as the fleet's health answers, each with its own status.
    expect(await rows.evaluateAll((trs) => trs.map((tr) => (tr as any).dataset.workspace))).toEqual(health.items.map((w) => w.workspaceId));
    expect(await page.locator('[data-testid=workspace-health]').allTextContents()).toEqual(health.items.map((w) => w.status));
    await rows.filter({ hasText: 'Quiet yard' }).click();
    await expect.poll(() => page.textContent('#workspace-name'), within).toBe('Quiet yard');
    expect(await page.isHidden('[data-testid=fleet-overview]')).toBe(true);
    expect(problems).toEqual([]);
    await close();
  });

  it('draws a marker for every located vehicle, coloured by status, with no tiles reachable', async () => {
    const { page, problems, close } = await openAsAdmin(1920);
    await page.locator('[data-testid=workspace-row]', { hasText: 'North depot' }).click();
    const markers = page.locator('#map [data-testid=map-marker]');
    await expect.poll(() => markers.count(), within).toBe(located.length);
    const onMap = await markers.evaluateAll((paths) => paths.map((p) => [(p as any).dataset.vehicle, (p as any).dataset.status, p.getAttribute('fill')]));
    expect(onMap.map(([id]) => id).sort()).toEqual([...located].sort());
    expect(onMap.find(([id]) => id === depot.vehicles[2]!.id)?.slice(1)).toEqual(['stale', '#d64545']);
    expect(onMap.find(([id]) => id === depot.vehicles[0]!.id)?.slice(1)).toEqual(['fresh', '#1f9d55']);
    expect(await page.textContent('[data-testid=map-note]')).toMatch(/No map tiles configured/);
    // Every marker lies inside the map's box: the first load frames them all.
    const inside = await page.evaluate(() => {
      const { document } = globalThis as any;
      const box = document.getElementById('map').getBoundingClientRect();
      return [...document.querySelectorAll('#map [data-testid=map-marker]')].every((p: any) => {
        const r = p.getBoundingClientRect();
        return r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom;
      });
    });
    expect(inside).toBe(true);
    // A click on a marker opens that vehicle's panel with its readiness.
    await page.locator(`#map [data-vehicle="${depot.vehicles[3]!.id}"]`).click({ force: true });
    await expect.poll(() => page.textContent('#panel-title'), within).toBe('Vehicle 0003');
    // It charges with no battery size known, its SoC up a point a minute: the estimate rests on that rate.
    expect(await page.textContent('[data-testid=panel-soc]')).toBe('72 % of a 80 % target');
    await expect.poll(() => page.textContent('[data-testid=readiness-estimate]'), within).toMatch(/^≈ [6-9] min to 80 % \(SoC \+6\d %\/h\)$/);
    const notCharging = page.locator(`[data-vehicle="${depot.vehicles[0]!.id}"] [data-testid=readiness]`);
    expect(await notCharging.textContent()).toBe('no estimate: not charging (11 % to 80 %)');
    expect(problems).toEqual([]);
    await close();
  });

  for (const width of widths) {
    it(`clips no column at ${width} px, in the overview, the workspace and onboarding`, async () => {
      const { page, problems, close } = await openAsAdmin(width);
      await page.waitForSelector('[data-testid=workspace-row]');
      expect(await clipped(page)).toEqual([]);
      await page.screenshot({ path: join(shots, `overview-${width}.png`), fullPage: true });

      await page.locator('[data-testid=workspace-row]', { hasText: 'North depot' }).click();
      await expect.poll(() => page.locator('[data-testid=vehicle-row]').count(), within).toBe(8);
      await page.locator('[data-testid=vehicle-row]').first().click();
      await page.waitForSelector('#chart svg polyline.soc-line');
      expect(await clipped(page)).toEqual([]);
      // At phone width the rows are cards; the facts of the low-priority columns are in each row's detail.
      if (width === 390) expect(await page.locator('#vehicle-table thead').isHidden()).toBe(true);
      if (width < 1920) expect(await page.locator('[data-testid=vehicle-row] .row-detail').first().isVisible()).toBe(true);
      await page.screenshot({ path: join(shots, `workspace-${width}.png`), fullPage: true });

      await page.click('[data-view=onboarding]');
      await page.waitForSelector('[data-testid=onboarding-connection]');
      await page.waitForSelector('[data-testid=discovered-device]');
      expect(await clipped(page)).toEqual([]);
      await page.screenshot({ path: join(shots, `onboarding-${width}.png`), fullPage: true });
      expect(problems).toEqual([]);
      await close();
    });
  }

  it('shows the workspace connections with their options, never credentials', async () => {
    const { page, close } = await openAsAdmin(1366);
    await page.locator('[data-testid=workspace-row]', { hasText: 'Quiet yard' }).click();
    await page.click('[data-view=onboarding]');
    const connection = page.locator('[data-testid=onboarding-connection]');
    await expect.poll(() => connection.count(), within).toBe(1);
    const text = (await connection.textContent())!;
    expect(text).toContain('samsara, poll');
    const answer = (await core.http.admin('GET', `/v1/workspaces/${quiet.workspaceId}/connections/${quiet.connectionId}`)).body as { options: Record<string, unknown> };
    for (const key of Object.keys(answer.options)) expect(text).toContain(key);
    expect(text).not.toMatch(/token|secret|password/i);
    await close();
  });

  // Waits on the discovered-devices API (its contract): readings of a device nobody bound are kept as a discovered
  // device, which the onboarding page binds to a new vehicle.
  it('binds a discovered device from the onboarding page and sees its vehicle fill', async () => {
    const at = core.clock.now() - 30_000;
    const unbound = update(depot, [{ signal: 'soc_pct', value: 64, observedAt: at }, { signal: 'location', value: { lat: 52.6, lon: 13.5 }, observedAt: at }], { externalDeviceId: 'dev-walk-in' });
    await core.http.service('POST', '/internal/v1/ingest', { updates: [unbound] });
    const listed = await core.http.admin('GET', `/v1/workspaces/${depot.workspaceId}/discovered-devices`);
    expect(listed.status).toBe(200);

    const { page, problems, close } = await openAsAdmin(1366);
    await page.locator('[data-testid=workspace-row]', { hasText: 'North depot' }).click();
    await page.click('[data-view=onboarding]');
    const device = page.locator('[data-testid=discovered-device][data-external-id="dev-walk-in"]');
    await device.waitFor();
    expect(await device.textContent()).toContain('soc_pct 64');
    await device.locator('input[name=name]').fill('Walk-in van');
    await device.locator('button[type=submit]').click();
    await expect.poll(() => page.textContent('[data-testid=onboarding-message]'), within).toMatch(/dev-walk-in bound/);
    expect(await page.locator('[data-testid=discovered-device][data-external-id="dev-walk-in"]').count()).toBe(0);

    await page.click('[data-view=workspace]');
    const row = page.locator('[data-testid=vehicle-row]', { hasText: 'Walk-in van' });
    await row.waitFor();
    // Its next readings arrive through ingest and fill the row and the map, live.
    const next = core.clock.now() - 1000;
    const answer = await core.http.service('POST', '/internal/v1/ingest', {
      updates: [update(depot, [{ signal: 'soc_pct', value: 66, observedAt: next }, { signal: 'location', value: { lat: 52.61, lon: 13.51 }, observedAt: next }], { externalDeviceId: 'dev-walk-in' })],
    });
    expect(answer.body.results[0].status).toBe('processed');
    await expect.poll(() => row.locator('.soc span').textContent(), within).toBe('66 / 80 %');
    await expect.poll(() => page.locator('#map [data-testid=map-marker]').count(), within).toBe(located.length + 1);
    expect(problems).toEqual([]);
    await close();
  });
});
