/**
 * The dashboard live on the event stream, in a real browser against a real core on loopback: rows, the chart and
 * the connection panel change as events arrive, with no reload and no polling; a dropped stream says
 * "Reconnecting…", comes back live and resumes after the last event it saw; heartbeats keep a quiet stream open,
 * and silence past them opens it again. The header while reconnecting is kept as a test artifact (test-results/).
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepTransitions } from '../../src/core/events/transition-sweeper.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend } from '../support/database.ts';
import { createFleet, iso, update, type TestFleet } from '../support/fleet.ts';
import { startSwitchableProxy } from '../support/switchable-proxy.ts';
import { startStallingProxy } from './stalling-proxy.ts';
import { launchBrowser } from '../support/browser.ts';

const within = { timeout: 10_000, interval: 50 };
let core: TestCore;
let browser: Browser;

beforeAll(async () => {
  // Heartbeats every second, so a test that moves the page's clock on never outruns them.
  core = await startTestCore({ eventStream: { heartbeatMs: 1000 } });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await core?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const portOf = (target: TestCore) => Number(new URL(target.url).port);

/** A workspace of three vehicles that reported a minute ago, and a key for it. */
async function reportingFleet(target: TestCore, name: string): Promise<{ fleet: TestFleet; key: string }> {
  const fleet = await createFleet(target.db, target.secretKey, { vehicles: 3, name });
  const at = target.clock.now() - 60_000;
  await ingestBatch(
    target.db,
    fleet.vehicles.map((_, i) =>
      update(
        fleet,
        [
          { signal: 'soc_pct', value: 70 + i, observedAt: at },
          { signal: 'charging_state', value: 'not_charging', observedAt: at },
        ],
        { vehicle: i },
      ),
    ),
    { now: target.clock.now() },
  );
  const key = (await target.http.admin('POST', `/v1/workspaces/${fleet.workspaceId}/api-keys`, { name: 'live' })).body.key as string;
  return { fleet, key };
}

interface Dashboard {
  page: Page;
  /** Requests for the vehicle list (a full load asks for it once). */
  lists(): number;
  streams(): Request[];
  requests(path: RegExp): number;
  status(): Promise<string | null>;
  /** Every text the status indicator has shown, in order. */
  statuses(): Promise<string[]>;
  row(vehicleId: string): ReturnType<Page['locator']>;
  problems: string[];
  close(): Promise<void>;
}

async function openDashboard(url: string, key: string, options: { fakeClock?: boolean } = {}): Promise<Dashboard> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  if (options.fakeClock) await page.clock.install();
  const requests: Request[] = [];
  const problems: string[] = [];
  page.on('request', (request) => requests.push(request));
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    // A refused connection while core is unreachable is the browser's own console error, and expected here.
    if (message.type() === 'error' && !/net::ERR_/.test(message.text())) problems.push(message.text());
  });
  const path = (request: Request) => new URL(request.url()).pathname;
  await page.goto(`${url}/#key=${key}`);
  await page.waitForSelector('#live');
  // Code that runs in the page reaches its globals through globalThis: the test's own types know no DOM.
  await page.evaluate(() => {
    const window = globalThis as any;
    const badge = window.document.getElementById('live');
    const seen: string[] = [badge.textContent ?? ''];
    window.seenStatuses = seen;
    new window.MutationObserver(() => seen.push(badge.textContent ?? '')).observe(badge, { childList: true, characterData: true, subtree: true });
  });
  const status = () => page.textContent('[data-testid=live-status]');
  await expect.poll(status, within).toBe('Live');
  return {
    page,
    lists: () => requests.filter((r) => /\/vehicles$/.test(path(r))).length,
    streams: () => requests.filter((r) => path(r).endsWith('/events')),
    requests: (pattern) => requests.filter((r) => pattern.test(path(r))).length,
    status,
    statuses: () => page.evaluate(() => (globalThis as any).seenStatuses as string[]),
    row: (vehicleId) => page.locator(`[data-vehicle="${vehicleId}"]`),
    problems,
    close: () => context.close(),
  };
}

async function ingest(target: TestCore, fleet: TestFleet, vehicle: number, readings: { signal: string; value: unknown }[]): Promise<void> {
  const at = target.clock.now() - 1000;
  const answer = await target.http.service('POST', '/internal/v1/ingest', { updates: [update(fleet, readings.map((r) => ({ ...r, observedAt: at })), { vehicle })] });
  expect(answer.status).toBe(200);
  expect(answer.body.results[0].status).toBe('processed');
}

describe('the dashboard live on the event stream', () => {
  it('changes a row, the chart and the connection panel as events arrive, with no reload and no polling', async () => {
    const { fleet, key } = await reportingFleet(core, 'Live depot');
    const dashboard = await openDashboard(core.url, key, { fakeClock: true });
    const { page } = dashboard;
    const [first, second] = fleet.vehicles.map((v) => v.id) as [string, string];
    await expect.poll(() => page.locator('[data-testid=vehicle-row]').count(), within).toBe(3);
    await dashboard.row(first).click();
    // One reading so far: a line of one bucket, attached but of no size, and the newest bucket listed first.
    await page.waitForSelector('#chart svg polyline.soc-line', { state: 'attached' });
    const chartPoints = async () => (await page.getAttribute('#chart svg polyline.soc-line', 'points'))!.split(' ').length;
    expect(await chartPoints()).toBe(1);
    const newestBucket = () => page.locator('[data-testid=recent-bucket]').first().textContent();
    expect(await newestBucket()).toMatch(/ 70 % \(70–70\)$/);
    // A reload would lose this mark, and a table built anew would hold another row element.
    await page.evaluate((id) => {
      const window = globalThis as any;
      window.rowBefore = window.document.querySelector(`[data-vehicle="${id}"]`);
    }, first);

    await ingest(core, fleet, 0, [
      { signal: 'soc_pct', value: 42 },
      { signal: 'charging_state', value: 'charging' },
      { signal: 'speed_kph', value: 12 },
    ]);
    const cells = dashboard.row(first).locator('td');
    await expect.poll(() => cells.nth(2).locator('.soc span').textContent(), within).toBe('42 / 80 %');
    expect(await cells.nth(3).textContent()).toBe('charging');
    expect(await cells.nth(4).textContent()).toBe('12 km/h');
    // The reading joins its 5 min bucket (or starts the next one), without asking for the history again.
    await expect.poll(newestBucket, within).toMatch(/\(42–(42|70)\)$/);
    const sameRow = await page.evaluate((id) => {
      const window = globalThis as any;
      return window.rowBefore === window.document.querySelector(`[data-vehicle="${id}"]`);
    }, first);
    expect(sameRow).toBe(true);

    // Three failed polls, then ten minutes without a sync: the sweep tells the connection failing and every
    // vehicle stale (its first sweep only records what it finds).
    await sweepTransitions(core.db, core.clock.now());
    await core.db.query(
      `INSERT INTO connection_poll_states (workspace_id, connection_id, last_attempt_at, last_error_at, last_error_class, last_error_message, consecutive_failures)
       VALUES ($1, $2, $3, $3, 'transient', 'HTTP 502 from the provider', 3)`,
      [fleet.workspaceId, fleet.connectionId, iso(core.clock.now())],
    );
    core.clock.advance(10 * 60_000);
    // The scheduler kept ticking meanwhile (else the connection reads scheduler_silent): the polls themselves failed.
    await core.db.query(
      `INSERT INTO workspace_scheduler_marks (workspace_id, last_event_at, last_event_id, last_source) VALUES ($1, $2, 'dashboard-live-tick', 'ticker')
       ON CONFLICT (workspace_id) DO UPDATE SET last_event_at = excluded.last_event_at`,
      [fleet.workspaceId, iso(core.clock.now() - 1000)],
    );
    try {
      await sweepTransitions(core.db, core.clock.now());
      const { rows } = await core.db.query<{ data: { reason: { detail: string } } }>(
        `SELECT data::json AS data FROM events WHERE workspace_id = $1 AND subject = $2 AND type = 'fleetwire.vehicle.freshness.changed'`,
        [fleet.workspaceId, `vehicles/${second}`],
      );
      expect(rows).toHaveLength(1);
      await expect.poll(() => dashboard.row(second).locator('[data-testid=vehicle-status]').textContent(), within).toBe('stale');
      expect(await dashboard.row(second).locator('.why').textContent()).toBe(rows[0]!.data.reason.detail);
      await expect.poll(() => page.locator('[data-testid=connection] .badge').textContent(), within).toBe('failing');
      // The summary is the server's judgement, asked again once after the burst of turns.
      await expect.poll(() => page.textContent('#count-stale'), within).toBe('3');
    } finally {
      core.clock.reset();
    }

    // Half a minute of the page's time: any polling would have asked again by now.
    await page.clock.fastForward(30_000);
    await sleep(300);
    expect(dashboard.lists()).toBe(1);
    expect(dashboard.streams()).toHaveLength(1);
    expect(dashboard.requests(/\/history$/)).toBe(2);
    const healthRequests = dashboard.requests(/\/health$/);
    expect(healthRequests).toBeGreaterThanOrEqual(2);
    expect(healthRequests).toBeLessThanOrEqual(3);
    expect(await dashboard.status()).toBe('Live');
    expect(dashboard.problems).toEqual([]);
    await dashboard.close();
  });

  it('says "Reconnecting…" while the stream is down, then is live again with the event it missed', async () => {
    const proxy = await startSwitchableProxy(portOf(core));
    try {
      const { fleet, key } = await reportingFleet(core, 'Flaky depot');
      const dashboard = await openDashboard(proxy.url, key);
      const [first, , third] = fleet.vehicles.map((v) => v.id) as [string, string, string];
      expect(await dashboard.page.getAttribute('[data-testid=live-status]', 'aria-live')).toBe('polite');

      await ingest(core, fleet, 0, [{ signal: 'soc_pct', value: 50 }]);
      await expect.poll(() => dashboard.row(first).locator('td').nth(2).locator('.soc span').textContent(), within).toBe('50 / 80 %');
      const { rows } = await core.db.query<{ position: string }>('SELECT max(position)::text AS position FROM events WHERE workspace_id = $1', [fleet.workspaceId]);
      const seenLast = rows[0]!.position;

      await proxy.down();
      await expect.poll(dashboard.status, within).toMatch(/^Reconnecting… since \S/);
      mkdirSync('test-results', { recursive: true });
      await dashboard.page.screenshot({ path: `test-results/dashboard-reconnecting-${backend}.png`, clip: { x: 0, y: 0, width: 1440, height: 120 } });
      // Told while the dashboard could not hear it.
      await ingest(core, fleet, 2, [{ signal: 'soc_pct', value: 17 }]);
      await core.events.flush();
      await proxy.up();

      await expect.poll(dashboard.status, { timeout: 20_000, interval: 50 }).toBe('Live');
      await expect.poll(() => dashboard.row(third).locator('td').nth(2).locator('.soc span').textContent(), within).toBe('17 / 80 %');
      const streams = dashboard.streams();
      expect(streams.length).toBeGreaterThanOrEqual(2);
      expect(streams[0]!.headers()['last-event-id']).toBeUndefined();
      expect(streams.at(-1)!.headers()['last-event-id']).toBe(seenLast);
      // One full load when the stream first opened and one when it opened again; none while it was down.
      expect(dashboard.lists()).toBe(2);
      const seen = await dashboard.statuses();
      expect(seen.indexOf('Live')).toBeLessThan(seen.findIndex((s) => s.startsWith('Reconnecting')));
      expect(dashboard.problems).toEqual([]);
      await dashboard.close();
    } finally {
      await proxy.close();
    }
  });

  it('keeps a quiet stream open while heartbeats arrive, and opens it again once they stop', async () => {
    const quiet = await startTestCore({ eventStream: { heartbeatMs: 200 } });
    const proxy = await startStallingProxy(portOf(quiet));
    try {
      const { key } = await reportingFleet(quiet, 'Quiet depot');
      const dashboard = await openDashboard(proxy.url, key, { fakeClock: true });
      const { page } = dashboard;
      const reconnected = async () => (await dashboard.statuses()).some((s) => s.startsWith('Reconnecting'));

      // A minute of the page's time in five-second steps, with heartbeats (and nothing else) between them.
      for (let step = 0; step < 12; step += 1) {
        await page.clock.fastForward(5000);
        await sleep(250);
      }
      expect(await reconnected()).toBe(false);
      expect(dashboard.streams()).toHaveLength(1);

      // The same steps with the stream's connection frozen: past three heartbeats' time, it is taken for dead.
      proxy.stallStreams();
      for (let step = 0; step < 15 && !(await reconnected()); step += 1) {
        await page.clock.fastForward(5000);
        await sleep(50);
      }
      expect(await reconnected()).toBe(true);
      await expect.poll(dashboard.status, { timeout: 15_000, interval: 50 }).toBe('Live');
      expect(dashboard.streams()).toHaveLength(2);
      expect(dashboard.lists()).toBe(2);
      expect(dashboard.problems).toEqual([]);
      await dashboard.close();
    } finally {
      await proxy.close();
      await quiet.close();
    }
    // A core of its own to start and stop, on a machine that may be running other suites.
  }, 60_000);
});
