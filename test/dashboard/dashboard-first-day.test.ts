/**
 * The first day with the dashboard alone (docs/FIRST-DAY.md, part B), in a real browser against a real core and the
 * Samsara simulator on loopback, from an empty database and with page interactions only: "New workspace", its
 * policy and cutover on Settings, an API key shown once, "Add connection" for Samsara (a wrong credentials shape and
 * wrong options answered with the API's problem detail first), a poll (run by the test as the scheduler would, on
 * the test's clock), the discovered devices appearing, one bound to a new vehicle and its row filling from the next
 * poll. The credentials are never in the page after they are sent, nor in any answer the page received. The forms
 * clip nothing at 1,920, 1,366 and 390 px, and every control has a label.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend } from '../support/database.ts';
import { launchBrowser } from '../support/browser.ts';
import { clipped, unlabelled } from './clipping.ts';

const within = { timeout: 10_000, interval: 50 };
const widths = [1920, 1366, 390] as const;
const shots = mkdtempSync(join(tmpdir(), `fleetwire-first-day-${backend}-`));
/** The Samsara account's token: what must never come back. */
const apiToken = `samsara-first-day-${Math.random().toString(36).slice(2)}-token`;
let core: TestCore;
let samsara: RunningSimulator;
let browser: Browser;

beforeAll(async () => {
  // The poll runner, the simulator and core judge time by one clock the test moves: a second poll is due when the
  // test says a poll interval has passed, with no waiting.
  core = await startTestCore({ polling: { runner: { now: () => core.clock.now() } } });
  const fleet = new FleetModel({ seed: 4242, vehicles: 4, startMs: core.clock.now() - 15 * 60_000 });
  samsara = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken }, fleet }], now: () => core.clock.now() });
  browser = await launchBrowser();
  process.stdout.write(`first-day screenshots: ${shots}\n`);
});

afterAll(async () => {
  await browser?.close();
  await core?.close();
  await samsara?.stop();
});

interface Opened {
  page: Page;
  problems: string[];
  /** The text of every answer the page received (the event stream, which never ends, aside). */
  answers: Promise<string>[];
  close(): Promise<void>;
}

async function openAsAdmin(width: number): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const answers: Promise<string>[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    // A refused request is an answer the page shows; anything else the console reports is a fault.
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) problems.push(message.text());
  });
  page.on('response', (response) => {
    if (!new URL(response.url()).pathname.endsWith('/events')) answers.push(response.text().catch(() => ''));
  });
  await page.goto(`${core.url}/#key=${core.adminToken}`);
  return { page, problems, answers, close: () => context.close() };
}

/** Everything the page holds: its markup and every field's current value (which the markup does not show). */
async function pageText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const { document } = globalThis as any;
    return [document.documentElement.outerHTML, ...[...document.querySelectorAll('input, textarea')].map((c: any) => c.value)].join('\n');
  });
}

const message = (page: Page, id: string) => page.textContent(`[data-testid=${id}]`);

describe('the first day, with the dashboard only', () => {
  let workspaceId = '';

  it('goes from an empty install to a live vehicle', async () => {
    const { page, problems, answers, close } = await openAsAdmin(1366);
    await page.waitForSelector('[data-testid=fleet-overview]:not([hidden])');
    await expect.poll(() => page.isVisible('#overview-empty'), within).toBe(true);

    // New workspace, with the keyboard alone: the name field, typed, Enter.
    await page.locator('[data-testid=new-workspace-form]').getByLabel('Name').focus();
    await page.keyboard.type('Depot North');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid=settings]:not([hidden])');
    const listed = (await core.http.admin('GET', '/v1/workspaces')).body.items as { id: string; name: string }[];
    expect(listed.map((w) => w.name)).toEqual(['Depot North']);
    workspaceId = listed[0]!.id;
    await expect.poll(() => page.textContent('#workspace-name'), within).toBe('Depot North');
    await expect.poll(() => page.inputValue('[data-testid=policy-form] [name=pollIntervalSeconds]'), within).not.toBe('');

    // Its policy: every field, as the form sends it.
    const policy = page.locator('[data-testid=policy-form]');
    await policy.getByLabel('Poll interval (seconds)').fill('60');
    await policy.getByLabel('Freshness goal (seconds)').fill('300');
    await policy.getByLabel('Silent after (seconds)').fill('3600');
    await policy.getByLabel('History kept (days)').fill('30');
    await policy.getByLabel('Events kept for replay (days)').fill('5');
    await policy.getByLabel('SoC thresholds (%)').fill('25, 85');
    await policy.getByRole('button', { name: 'Save policy' }).click();
    await expect.poll(() => message(page, 'policy-message'), within).toBe('Policy saved.');
    const saved = (await core.http.admin('GET', `/v1/workspaces/${workspaceId}`)).body;
    expect(saved.policy).toMatchObject({ enabled: true, pollIntervalSeconds: 60, freshnessThresholdSeconds: 300, silentAfterSeconds: 3600, retentionDays: 30, eventRetentionDays: 5, socThresholdsPct: [25, 85] });

    // The cutover, there and back: legacy, then core (which polls it). Back to core is gated on parity, of which a
    // new install has none: refused with the gate's reason, then forced with a reason of the operator's.
    const cutover = page.locator('[data-testid=cutover-form]');
    await cutover.getByLabel('legacy:').check();
    await page.getByRole('button', { name: 'Save cutover' }).click();
    await expect.poll(() => message(page, 'cutover-message'), within).toBe('Cutover set to legacy.');
    await cutover.getByLabel('core: core polls it').check();
    await page.getByRole('button', { name: 'Save cutover' }).click();
    await expect.poll(() => message(page, 'cutover-message'), within).toMatch(/^parity does not meet the cutover gate\. Stay in shadow/);
    expect(await page.locator('[data-testid=cutover-message-reasons] li').allTextContents()).toEqual([expect.stringMatching(/^no reading of the legacy poller in the window/)]);
    await cutover.getByLabel('Reason').fill('first day: there is no legacy poller');
    await cutover.getByLabel('Force:').check();
    await page.getByRole('button', { name: 'Save cutover' }).click();
    await expect.poll(() => message(page, 'cutover-message'), within).toBe('Cutover set to core.');
    expect((await core.http.admin('GET', `/v1/workspaces/${workspaceId}`)).body.cutover.mode).toBe('core');

    // A key for the depot's screens: shown once, gone from the page when the operator says it is copied.
    await page.getByLabel('Key name').fill('dispatch board');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.waitForSelector('[data-testid=new-key]:not([hidden])');
    const key = await page.inputValue('[data-testid=new-key-value]');
    expect(key).toMatch(/^fwk_/);
    expect(await page.textContent('[data-testid=new-key]')).toMatch(/shown this once and never again/);
    expect((await core.http.request('GET', `/v1/workspaces/${workspaceId}`, { token: key })).status).toBe(200);
    await page.getByRole('button', { name: 'I have copied it' }).click();
    expect(await page.isHidden('[data-testid=new-key]')).toBe(true);
    expect(await pageText(page)).not.toContain(key);
    await expect.poll(() => page.locator('[data-testid=api-key]').count(), within).toBe(1);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Revoke the key dispatch board' }).click();
    await expect.poll(() => message(page, 'api-key-message'), within).toBe('Key "dispatch board" revoked.');
    expect((await core.http.request('GET', `/v1/workspaces/${workspaceId}`, { token: key })).status).toBe(401);

    // Add connection: a wrong credentials shape, then wrong options, each answered with the API's detail.
    await page.click('[data-view=onboarding]');
    await page.getByRole('button', { name: 'Add connection' }).first().click();
    const form = page.locator('[data-testid=add-connection-form]');
    await expect.poll(() => form.getByLabel('Provider').inputValue(), within).toBe('samsara');
    expect(await form.getByLabel('Transport').inputValue()).toBe('poll');
    await form.getByLabel('Label (optional)').fill('Samsara main');
    await form.getByLabel('Base URL').fill(samsara.url);
    await form.getByLabel('Credentials (JSON)').fill(JSON.stringify({ token: apiToken }));
    await form.getByRole('button', { name: 'Add connection' }).click();
    await expect.poll(() => message(page, 'add-connection-message'), within).toMatch(/^credentials for samsara are not valid at: .*\(invalid_credentials\)$/);
    expect(await form.getByLabel('Credentials (JSON)').inputValue()).toBe('');
    await form.getByLabel('Credentials (JSON)').fill(JSON.stringify({ apiToken }));
    await form.getByLabel('Options (JSON, optional)').fill('{"apiVersion": "latest"}');
    await form.getByRole('button', { name: 'Add connection' }).click();
    await expect.poll(() => message(page, 'add-connection-message'), within).toMatch(/^options for samsara are not valid: .*apiVersion.*\(invalid_options\)$/);
    await form.getByLabel('Credentials (JSON)').fill(JSON.stringify({ apiToken }));
    await form.getByLabel('Options (JSON, optional)').fill('{"restartOverlapMinutes": 5}');
    await form.getByRole('button', { name: 'Add connection' }).click();
    await expect.poll(() => message(page, 'connections-message'), within).toMatch(/^Connection "Samsara main" added/);
    const connection = page.locator('[data-testid=onboarding-connection]');
    await expect.poll(() => connection.count(), within).toBe(1);
    expect(await connection.textContent()).toContain(`samsara, poll — ${samsara.url}`);
    expect(await connection.textContent()).toContain('restartOverlapMinutes5');
    expect(await pageText(page)).not.toContain(apiToken);

    // The first poll, as the scheduler would run it; the waiting list asks again by itself while it is empty.
    await expect.poll(() => page.isVisible('#discovered-empty'), within).toBe(true);
    await core.runner.runWorkspace({ workspaceId, eventId: 'first-day-poll-1' });
    const devices = page.locator('[data-testid=discovered-device]');
    await expect.poll(() => devices.count(), { ...within, timeout: 15_000 }).toBe(4);
    const discovered = (await core.http.admin('GET', `/v1/workspaces/${workspaceId}/discovered-devices`)).body.items as { externalId: string; sample: { soc_pct?: { observedAt: string } } }[];
    // The device whose SoC came last is awake (driving or charging: a reading every 30 s), so it reports again by the
    // next poll; a parked or sleeping one may not for hours.
    const lastSoc = (d: (typeof discovered)[number]) => Date.parse(d.sample.soc_pct?.observedAt ?? '1970-01-01T00:00:00Z');
    const busiest = [...discovered].sort((a, b) => lastSoc(b) - lastSoc(a))[0]!.externalId;
    const device = page.locator(`[data-testid=discovered-device][data-external-id="${busiest}"]`);
    await device.getByLabel('New vehicle name').fill('Bus 12');
    await device.getByRole('button', { name: 'Bind' }).click();
    await expect.poll(() => message(page, 'onboarding-message'), within).toMatch(new RegExp(`^${busiest} bound to a new vehicle`));
    await expect.poll(() => devices.count(), within).toBe(3);

    // Its row on the fleet view, empty until its readings come, then filled live by the next poll.
    await page.click('[data-view=workspace]');
    const row = page.locator('[data-testid=vehicle-row]', { hasText: 'Bus 12' });
    await row.waitFor();
    core.clock.advance(2 * 60_000);
    await core.runner.runWorkspace({ workspaceId, eventId: 'first-day-poll-2' });
    await expect.poll(() => row.locator('.soc span').textContent(), within).toMatch(/^\d+ \/ 85 %$/);
    const vehicle = ((await core.http.admin('GET', `/v1/workspaces/${workspaceId}/vehicles`)).body.items as { name: string; signals: Record<string, unknown> }[]).find((v) => v.name === 'Bus 12')!;
    expect(vehicle.signals.soc_pct).toBeDefined();

    // The credentials were sent once and came back nowhere: not in the page, not in any answer it received.
    expect(await pageText(page)).not.toContain(apiToken);
    const received = await Promise.all(answers);
    expect(received.length).toBeGreaterThan(10);
    expect(received.filter((text) => text.includes(apiToken))).toEqual([]);
    expect(received.filter((text) => text.includes(key))).toHaveLength(1);
    expect(problems).toEqual([]);
    await close();
  });

  for (const width of widths) {
    it(`clips no form at ${width} px, and labels every control`, async () => {
      const { page, problems, close } = await openAsAdmin(width);
      await page.waitForSelector('[data-testid=workspace-row]');
      expect(await clipped(page)).toEqual([]);
      expect(await unlabelled(page)).toEqual([]);
      await page.screenshot({ path: join(shots, `overview-${width}.png`), fullPage: true });

      await page.locator('[data-testid=workspace-row]', { hasText: 'Depot North' }).click();
      await page.click('[data-view=settings]');
      await expect.poll(() => page.inputValue('[data-testid=policy-form] [name=pollIntervalSeconds]'), within).toBe('60');
      expect(await clipped(page)).toEqual([]);
      expect(await unlabelled(page)).toEqual([]);
      await page.screenshot({ path: join(shots, `settings-${width}.png`), fullPage: true });

      await page.click('[data-view=onboarding]');
      await page.getByRole('button', { name: 'Add connection' }).first().click();
      await expect.poll(() => page.locator('[data-testid=add-connection-form] [name=transport]').inputValue(), within).toBe('poll');
      await page.locator('[data-testid=add-connection-form] [name=provider]').selectOption('traccar');
      await expect.poll(() => page.locator('[data-testid=add-connection-form] [name=transport]').inputValue(), within).toBe('stream');
      expect(await page.locator('[data-testid=add-connection-form] [name=baseUrl]').evaluate((node) => (node as any).required)).toBe(true);
      await page.getByRole('button', { name: 'Edit Samsara main' }).click();
      await page.waitForSelector('[data-testid=edit-connection-form]');
      await page.waitForSelector('[data-testid=discovered-device]');
      expect(await clipped(page)).toEqual([]);
      expect(await unlabelled(page)).toEqual([]);
      await page.screenshot({ path: join(shots, `onboarding-${width}.png`), fullPage: true });
      expect(problems).toEqual([]);
      await close();
    });
  }

  it('changes a connection and removes one, with the API detail on a refusal', async () => {
    const { page, problems, answers, close } = await openAsAdmin(1366);
    await page.locator('[data-testid=workspace-row]', { hasText: 'Depot North' }).click();
    await page.click('[data-view=onboarding]');
    const connection = page.locator('[data-testid=onboarding-connection]', { hasText: 'Samsara main' });
    await connection.getByRole('button', { name: 'Edit Samsara main' }).click();
    const edit = connection.locator('[data-testid=edit-connection-form]');
    await edit.getByLabel('Options (JSON)').fill('{"restartOverlapMinutes": -1}');
    await edit.getByRole('button', { name: 'Save connection' }).click();
    await expect.poll(() => edit.locator('[data-testid=edit-connection-message]').textContent(), within).toMatch(/restartOverlapMinutes.*\(invalid_options\)$/);
    await edit.getByLabel('Label').fill('Samsara depot');
    await edit.getByLabel('Enabled').uncheck();
    await edit.getByLabel('Options (JSON)').fill('{"restartOverlapMinutes": 10}');
    const rotated = `${apiToken}-rotated`;
    await edit.getByLabel('Replace credentials (JSON)').fill(JSON.stringify({ apiToken: rotated }));
    await edit.getByRole('button', { name: 'Save connection' }).click();
    await expect.poll(() => message(page, 'connections-message'), within).toBe('Connection "Samsara depot" saved, with its new credentials.');
    const changed = page.locator('[data-testid=onboarding-connection]');
    await expect.poll(() => changed.textContent(), within).toMatch(/Samsara depot disabled.*restartOverlapMinutes10/);
    const answer = (await core.http.admin('GET', `/v1/workspaces/${workspaceId}/connections`)).body.items[0];
    expect(answer).toMatchObject({ label: 'Samsara depot', enabled: false, options: { restartOverlapMinutes: 10 } });
    expect(await pageText(page)).not.toContain(rotated);

    page.once('dialog', (dialog) => void dialog.accept());
    await changed.getByRole('button', { name: 'Remove Samsara depot' }).click();
    await expect.poll(() => message(page, 'connections-message'), within).toBe('Connection "Samsara depot" removed.');
    expect((await core.http.admin('GET', `/v1/workspaces/${workspaceId}/connections`)).body.items).toEqual([]);
    expect((await Promise.all(answers)).filter((text) => text.includes(apiToken))).toEqual([]);
    expect(problems).toEqual([]);
    await close();
  });
});

describe('GET /v1/providers', () => {
  it('answers every provider of the registry, for the admin only', async () => {
    const answer = await core.http.admin('GET', '/v1/providers');
    expect(answer.status).toBe(200);
    const byName = new Map((answer.body.items as { name: string }[]).map((p) => [p.name, p]));
    expect([...byName.keys()]).toEqual(['samsara', 'geotab', 'traccar', 'tessie', 'tesla-fleet-telemetry']);
    expect(byName.get('samsara')).toEqual({
      name: 'samsara',
      title: 'Samsara',
      transports: ['poll'],
      baseUrl: { required: false, default: 'https://api.samsara.com', schemes: ['http:', 'https:', 'ws:', 'wss:'] },
      credentials: { fields: ['apiToken'], required: ['apiToken'] },
      options: ['apiVersion', 'restartOverlapMinutes', 'historyDays'],
    });
    expect(byName.get('traccar')).toMatchObject({ transports: ['stream'], baseUrl: { required: true, default: null }, credentials: { fields: ['token'] } });
    expect(byName.get('tesla-fleet-telemetry')).toMatchObject({ credentials: { fields: ['username', 'password'], required: [] } });
    expect((await core.http.request('GET', '/v1/providers', { token: core.serviceToken })).status).toBe(403);
    expect((await core.http.request('GET', '/v1/providers')).status).toBe(401);
  });
});
