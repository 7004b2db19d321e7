/**
 * Onboarding many devices at once from the dashboard (docs/FIRST-DAY.md, part B), in a real browser against a real
 * core: the admin previews "Bind all that match" for a prefix (nothing bound yet), binds them (each waiting device
 * with the prefix gets a vehicle; the others keep waiting), then imports a fleet list from a CSV table: a table with a
 * bad row is refused whole with that row's problem shown, the corrected one creates its vehicles. A workspace key
 * sees none of these forms.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { launchBrowser } from '../support/browser.ts';

const within = { timeout: 10_000, interval: 50 };
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

/** Devices the workspace's connection reports that no vehicle is bound to: discovered, waiting. */
async function reportUnbound(fleet: TestFleet, externalIds: readonly string[]): Promise<void> {
  const at = core.clock.now() - 1000;
  await ingestBatch(
    core.db,
    externalIds.map((externalDeviceId, i) => update(fleet, [{ signal: 'soc_pct', value: 40 + i, observedAt: at }], { externalDeviceId })),
    { now: core.clock.now() },
  );
}

async function openOnboarding(token: string, workspaceId: string): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${core.url}/#key=${token}`);
  if (token === core.adminToken) await page.click(`[data-testid=workspace-row][data-workspace="${workspaceId}"]`);
  await page.click('[data-view=onboarding]');
  return { page, problems, close: () => context.close() };
}

const waiting = (page: Page) => page.locator('[data-testid=discovered-device]');

describe('onboarding many devices at once', () => {
  it('previews and binds every waiting device with a prefix, and imports a CSV fleet list all or nothing', async () => {
    const fleet = await createFleet(core.db, core.secretKey, { vehicles: 1, name: 'Bulk depot' });
    await reportUnbound(fleet, ['BUS-101', 'BUS-102', 'BUS-103', 'VAN-7', 'VAN-8']);
    const { page, problems, close } = await openOnboarding(core.adminToken, fleet.workspaceId);
    try {
      await expect.poll(() => waiting(page).count(), within).toBe(5);
      const matching = page.locator('[data-testid=bind-matching-form]');
      await matching.getByLabel('External id starts with').fill('BUS-');
      await matching.getByLabel('Vehicle name').fill('Bus {externalId}');

      await matching.getByRole('button', { name: 'Preview' }).click();
      await expect.poll(() => matching.locator('[data-testid=bind-matching-message]').textContent(), within).toBe('3 devices would be bound, 0 skipped.');
      expect(await matching.locator('[data-testid=bind-matching-preview-list] li').allTextContents()).toEqual([
        'BUS-101: would get a new vehicle',
        'BUS-102: would get a new vehicle',
        'BUS-103: would get a new vehicle',
      ]);
      // A preview binds nothing.
      expect((await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles`)).body.items).toHaveLength(1);

      await matching.getByRole('button', { name: 'Bind all' }).click();
      await expect.poll(() => matching.locator('[data-testid=bind-matching-message]').textContent(), within).toMatch(/^3 devices bound to new vehicles, 0 skipped/);
      await expect.poll(async () => (await waiting(page).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-external-id')))).sort(), within).toEqual(['VAN-7', 'VAN-8']);
      const names = (await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles`)).body.items.map((v: { name: string }) => v.name);
      expect(names).toEqual(expect.arrayContaining(['Bus BUS-101', 'Bus BUS-102', 'Bus BUS-103']));

      // A fleet list with one bad row (a VIN the workspace has already, a connection it does not have): nothing is
      // created, and each bad row is named.
      const vinTaken = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/vehicles`, { name: 'Spare', vin: 'VINTAKEN0000001' })).body.id as string;
      expect(vinTaken).toBeTruthy();
      const importing = page.locator('[data-testid=import-form]');
      const header = 'name,vin,connection,external_id';
      await importing.getByLabel('Or paste the table').fill(
        [header, `Van 7,VINVAN00000000007,${fleet.connectionId},VAN-7`, `Van 8,VINTAKEN0000001,${fleet.connectionId},VAN-8`].join('\n'),
      );
      await importing.getByRole('button', { name: 'Import' }).click();
      await expect.poll(() => importing.locator('[data-testid=import-errors] li').allTextContents(), within).toEqual([expect.stringMatching(/^row 3, vin: /)]);
      expect(await importing.locator('[data-testid=import-message]').getAttribute('role')).toBe('alert');
      expect((await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles`)).body.items).toHaveLength(5);

      await importing.getByLabel('Or paste the table').fill(
        [header, `Van 7,VINVAN00000000007,${fleet.connectionId},VAN-7`, `Van 8,VINVAN00000000008,${fleet.connectionId},VAN-8`].join('\n'),
      );
      await importing.getByRole('button', { name: 'Import' }).click();
      await expect.poll(() => importing.locator('[data-testid=import-message]').textContent(), within).toMatch(/^2 vehicles imported/);
      await expect.poll(() => waiting(page).count(), within).toBe(0);
      expect((await core.http.admin('GET', `/v1/workspaces/${fleet.workspaceId}/vehicles`)).body.items).toHaveLength(7);
      expect(problems).toEqual([]);
    } finally {
      await close();
    }

    // A workspace key reads the list but binds nothing in bulk: the forms are the admin's.
    const key = (await core.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, { name: 'board' })).body.key as string;
    const asKey = await openOnboarding(key, fleet.workspaceId);
    try {
      await expect.poll(() => asKey.page.locator('[data-testid=bulk-onboarding]').isHidden(), within).toBe(true);
    } finally {
      await asKey.close();
    }
  });
});
