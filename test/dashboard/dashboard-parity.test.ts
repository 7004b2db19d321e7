/**
 * The migration panel (issue "cutover without a leap of faith", dashboard), in a real browser against a real core: a
 * workspace in shadow fed two complete hours by both pollers, with one vehicle's legacy odometer in miles and a
 * 40-minute gap in core's readings of another (as test/core/cutover-shadow.test.ts injects them). The settings page
 * shows the gate not met with the coverage and agreement reasons, the two vehicles in the worst list, a disagreement
 * with both values and a reading core lacks; Core is refused with each reason listed in the form; forced with a
 * reason it is taken, and the live cutover event brings the change into the transitions list, as it does a rollback
 * made elsewhere. Nothing is clipped at 1,920, 1,366 and 390 px and every control is labelled. Everything is placed
 * in complete UTC hours before the test core's clock, so it holds at any hour of any day.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putCutover } from '../../src/core/registry/workspaces.ts';
import { launchBrowser } from '../support/browser.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend } from '../support/database.ts';
import { createFleet, iso, type TestFleet } from '../support/fleet.ts';
import { feedTwoHours, hoursBefore, miles } from '../support/parity-feed.ts';
import { clipped, unlabelled } from './clipping.ts';

const within = { timeout: 15_000, interval: 100 };
const widths = [1920, 1366, 390] as const;
const shots = mkdtempSync(join(tmpdir(), `fleetwire-parity-${backend}-`));
const minute = 60_000;
let core: TestCore;
let browser: Browser;
let fleet: TestFleet;
/** Where core's 40-minute gap in vehicle 2's readings starts. */
let gapFrom: number;

/** Whole hours before the one the test clock is in: every reading is in the past, whatever the time. */
const hoursAgo = (n: number) => hoursBefore(core.clock.now(), n);

/** Two hours of both pollers: vehicle 1's legacy odometer in miles, and vehicle 2 missing from core's polling for 40 minutes. */
async function twoHours(): Promise<void> {
  gapFrom = hoursAgo(3) + 30 * minute;
  await feedTwoHours(core.db, fleet, core.clock.now(), {
    legacyOdometer: (v, km) => (v === 1 ? Math.round(km * miles * 10) / 10 : km),
    coreSkips: (v, ms) => v === 2 && ms >= gapFrom && ms < gapFrom + 40 * minute,
  });
}

beforeAll(async () => {
  core = await startTestCore();
  fleet = await createFleet(core.db, core.secretKey, { vehicles: 3, cutover: 'legacy', name: 'East yard (migrating)' });
  await putCutover(core.db, fleet.workspaceId, 'shadow');
  await twoHours();
  browser = await launchBrowser();
  process.stdout.write(`parity screenshots: ${shots}\n`);
});

afterAll(async () => {
  await browser?.close();
  await core?.close();
});

async function openSettings(width: number): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    // A refused cutover is an answer the page shows; anything else the console reports is a fault.
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) problems.push(message.text());
  });
  await page.goto(`${core.url}/#key=${core.adminToken}`);
  await page.locator('[data-testid=workspace-row]', { hasText: 'East yard' }).click();
  await page.click('[data-view=settings]');
  await page.waitForSelector('[data-testid=migration]:not([hidden]) [data-testid=parity-verdict]');
  return { page, problems, close: () => context.close() };
}

const texts = (page: Page, selector: string) => page.locator(selector).allTextContents();
const cutover = (page: Page) => page.locator('[data-testid=cutover-form]');

async function chooseCore(page: Page): Promise<void> {
  await cutover(page).getByLabel('core: core polls it').check();
  await page.getByRole('button', { name: 'Save cutover' }).click();
  await page.waitForSelector('[data-testid=cutover-message-reasons] li');
}

describe('the migration panel of a workspace in shadow', () => {
  it('shows the gate not met, why, the worst vehicles and the differences; refuses Core with the reasons; takes it forced', { timeout: 90_000 }, async () => {
    const { page, problems, close } = await openSettings(1366);
    const [one, two] = [fleet.vehicles[1]!.id, fleet.vehicles[2]!.id];

    // The verdict, each reason on a line of its own: 3 vehicles x 24 visits x 2 signals, of which core lacks 8 x 2
    // of vehicle 2, and vehicle 1's 24 odometer readings disagree.
    expect(await page.textContent('[data-testid=parity-verdict]')).toBe('gate not met');
    const reasons = await texts(page, '[data-testid=parity-reason]');
    expect(reasons).toEqual([expect.stringMatching(/^coverage 88\.89 % is below 99 %/), expect.stringMatching(/^agreement 81\.25 % is below 99 %/)]);
    expect(await page.textContent('[data-testid=parity-window]')).toMatch(/^Over the last 24 h, from /);
    const figure = async (id: string) => (await page.locator(`[data-testid=${id}] dd > span`).allTextContents()).join(' | ');
    expect(await figure('parity-coverage')).toBe("88.89 % | of the legacy poller's 144 readings core also has (gate 99 %)");
    expect(await figure('parity-agreement')).toBe('81.25 % | of the 128 readings both have agree (gate 99 %)');
    expect(await figure('parity-missing-in-core')).toBe("16 | of the legacy poller's 144 readings");
    expect(await figure('parity-missing-in-legacy')).toBe("0 | of core's 128 readings");
    expect(await figure('parity-core-freshness')).toMatch(/^mean lag 10 s \| newest observed .+ ago$/);
    expect(await figure('parity-legacy-freshness')).toMatch(/^mean lag 20 s \| newest observed .+ ago$/);
    const signal = (name: string) => page.locator(`[data-testid=parity-signal][data-signal=${name}] td`).allTextContents();
    expect(await signal('odometer_km')).toEqual(['odometer_km', '88.89 %', '62.5 %', '72 / 64', '8', '0']);
    expect(await signal('soc_pct')).toEqual(['soc_pct', '88.89 %', '100 %', '72 / 64', '8', '0']);

    // The two bad vehicles, worst first, each in its worst signal.
    const worst = page.locator('[data-testid=parity-worst-vehicle]');
    expect(await worst.evaluateAll((rows) => rows.map((r) => (r as any).dataset.vehicle))).toEqual([one, two]);
    expect(await worst.nth(0).locator('td').allTextContents()).toEqual(['Vehicle 0001', 'odometer_km', '100 %', '50 %']);
    expect(await worst.nth(1).locator('td').allTextContents()).toEqual(['Vehicle 0002', 'odometer_km', '66.67 %', '100 %']);

    // A disagreement with both values side by side (the legacy one in miles), and a reading core lacks, when.
    const disagreement = page.locator('[data-testid=parity-difference][data-kind=disagreement]').first();
    expect(await disagreement.getAttribute('data-vehicle')).toBe(one);
    const [, , kind, , coreValue, legacyValue] = await disagreement.locator('td').allTextContents();
    expect(kind).toBe('values differ');
    expect(Number(legacyValue) / Number(coreValue)).toBeCloseTo(miles, 2);
    const gap = page.locator('[data-testid=parity-difference][data-kind=missing_in_core]').first();
    expect(await gap.getAttribute('data-vehicle')).toBe(two);
    const gapCells = await gap.locator('td').allTextContents();
    expect([gapCells[0], gapCells[2], gapCells[4]]).toEqual(['Vehicle 0002', 'core lacks it', 'lacks it']);
    expect(Number(gapCells[5])).toBe(1000 + 200 + 30);
    expect(await gap.locator('time').getAttribute('datetime')).toBe(iso(gapFrom));

    // A week holds the same two hours: the same figures, over 168 hours.
    await page.getByRole('button', { name: '7 d' }).click();
    await expect.poll(() => page.textContent('[data-testid=parity-window]'), within).toMatch(/^Over the last 168 h, from .*judged over the policy's 24 h\.$/);
    expect(await page.getByRole('button', { name: '7 d' }).getAttribute('aria-pressed')).toBe('true');
    expect(await figure('parity-coverage')).toMatch(/^88\.89 % \|/);
    await page.getByRole('button', { name: '24 h' }).click();
    await expect.poll(() => page.textContent('[data-testid=parity-window]'), within).toMatch(/^Over the last 24 h, from /);

    // Core is refused, each of the gate's reasons a line of the form's message.
    await chooseCore(page);
    expect(await page.locator('[data-testid=cutover-message]').evaluate((node) => node.firstChild?.textContent)).toBe(
      'parity does not meet the cutover gate. Stay in shadow until it does, or force it with a reason (parity_not_met)',
    );
    expect(await texts(page, '[data-testid=cutover-message-reasons] li')).toEqual(reasons);
    expect((await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}`)).body.cutover.mode).toBe('shadow');

    // Forced with a reason, it is taken; the cutover event brings it into the transitions list.
    await cutover(page).getByLabel('Reason').fill('vehicle 1 is being re-fitted; its legacy unit reports miles');
    await cutover(page).getByLabel('Force:').check();
    await page.getByRole('button', { name: 'Save cutover' }).click();
    await expect.poll(() => page.textContent('[data-testid=cutover-message]'), within).toBe('Cutover set to core.');
    const transitions = page.locator('[data-testid=cutover-transition]');
    await expect.poll(() => transitions.first().textContent(), within).toMatch(/^shadow → core forced .+by admin token — “vehicle 1 is being re-fitted; its legacy unit reports miles”$/);
    expect(await transitions.first().getAttribute('data-forced')).toBe('true');
    expect(await transitions.nth(1).textContent()).toMatch(/^legacy → shadow .+by system — no reason given$/);

    // A rollback made elsewhere arrives the same way, within seconds rather than at the minute's refresh; the
    // panel stays, with the parity the window still holds.
    const rollback = await core.http.admin('PUT', `/v1/workspaces/${fleet.workspaceId}/cutover`, { mode: 'shadow', reason: 'back to shadow for a second look', actor: 'depot lead' });
    expect(rollback.status).toBe(200);
    await expect.poll(() => transitions.first().textContent(), { timeout: 10_000, interval: 100 }).toMatch(/^core → shadow .+by depot lead — “back to shadow for a second look”$/);
    expect(await page.isVisible('[data-testid=migration]')).toBe(true);

    // A vehicle of the worst list opens as a row of the vehicle table does.
    await worst.nth(0).getByRole('button', { name: 'Vehicle 0001' }).click();
    await expect.poll(() => page.isVisible('[data-testid=vehicle-panel]'), within).toBe(true);
    expect(await page.textContent('#panel-title')).toBe('Vehicle 0001');
    expect(await page.isHidden('[data-testid=settings]')).toBe(true);
    expect(problems).toEqual([]);
    await close();
  });

  it('stays out of the way of a workspace in core with no parity in its window', async () => {
    const quiet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'Quiet yard' });
    const { page, problems, close } = await openSettings(1366);
    const answered = (what: string) =>
      page.waitForResponse((r) => r.url().includes(`/v1/workspaces/${quiet.workspaceId}/cutover/${what}`)).then(async (response) => response.finished());
    const answers = Promise.all([answered('parity'), answered('transitions')]);
    await page.selectOption('#workspace-picker', quiet.workspaceId);
    await answers;
    // A frame after the answers: the panel has decided by then.
    await page.evaluate(() => new Promise((done) => (globalThis as any).requestAnimationFrame(done)));
    await expect.poll(() => page.textContent('#workspace-name'), within).toBe('Quiet yard');
    expect(await page.isHidden('[data-testid=migration]')).toBe(true);
    expect(problems).toEqual([]);
    await close();
  });

  for (const width of widths) {
    it(`clips nothing at ${width} px and labels every control, a refused cutover's reasons listed`, async () => {
      const { page, problems, close } = await openSettings(width);
      await page.waitForSelector('[data-testid=parity-difference]');
      await chooseCore(page);
      expect(await clipped(page)).toEqual([]);
      expect(await unlabelled(page)).toEqual([]);
      await page.screenshot({ path: join(shots, `migration-${width}.png`), fullPage: true });
      expect(problems).toEqual([]);
      await close();
    });
  }
});
