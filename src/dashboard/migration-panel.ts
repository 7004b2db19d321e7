/**
 * The migration panel on a workspace's settings page, under the cutover form: while the workspace is in `shadow`
 * (and in `legacy` or `core` when the window still holds parity), how core's polling compares with the legacy
 * poller's (`GET .../cutover/parity`, drawn by parity-view.ts) and the recent cutover changes (`GET
 * .../cutover/transitions`). It asks again when a cutover event arrives and once a minute while the page is shown:
 * the gate is judged over hours of readings that pollers deliver every few minutes, so asking more often would show
 * next to nothing new, and no event tells of parity itself.
 */
import type { CutoverTransition, ParityReport, Workspace } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { $, setText } from './dom.ts';
import { buildParityTables, renderDifferences, renderGate, renderSignals, renderSummary, renderTransitions, renderWindow, renderWorst } from './parity-view.ts';

const refreshMs = 60_000;
/** The window picker's choices, in hours: a day, and a week. */
type WindowHours = 24 | 168;

export interface MigrationPanelDeps {
  api: Api;
  workspaceId(): string | null;
  onOpenVehicle(vehicleId: string): void;
  onUnauthorized(): void;
}

export interface MigrationPanel {
  /** The settings page is shown: the panel loads now and every minute until `leave`. */
  show(): void;
  /** Something changed (a cutover event): asked again at once, if the page is shown. */
  refresh(): void;
  leave(): void;
}

export function createMigrationPanel(deps: MigrationPanelDeps): MigrationPanel {
  const root = $('settings-migration');
  buildParityTables();
  const message = $('migration-message');
  let windowHours: WindowHours = 24;
  let active = false;
  /** Shown once in this visit: it stays (its window picker with it) whatever a later window holds. */
  let shown = false;
  let timer: number | undefined;
  let asked = 0;

  const chips = [...root.querySelectorAll<HTMLButtonElement>('[data-parity-window]')];
  for (const chip of chips) {
    chip.addEventListener('click', () => {
      windowHours = Number(chip.dataset.parityWindow) === 168 ? 168 : 24;
      markWindow();
      void load();
    });
  }

  function markWindow(): void {
    for (const chip of chips) chip.setAttribute('aria-pressed', String(Number(chip.dataset.parityWindow) === windowHours));
  }

  function fail(text: string): void {
    message.hidden = text === '';
    setText(message, text);
  }

  async function load(): Promise<void> {
    const ws = deps.workspaceId();
    if (!active || !ws) return;
    const mine = (asked += 1);
    const path = `/v1/workspaces/${ws}`;
    try {
      const [workspace, report, transitions] = await Promise.all([
        deps.api.get<Workspace>(path),
        deps.api.get<ParityReport>(`${path}/cutover/parity?window=${windowHours}h`),
        deps.api.get<{ items: CutoverTransition[] }>(`${path}/cutover/transitions`),
      ]);
      // A later answer, another workspace, or a page left: this one is not shown.
      if (mine !== asked || !active || ws !== deps.workspaceId()) return;
      const { summary } = report;
      shown ||= workspace.cutover.mode === 'shadow' || summary.legacyReadings + summary.coreReadings > 0;
      root.hidden = !shown;
      if (!shown) return;
      fail('');
      renderWindow(report, workspace.policy.cutoverGate.windowHours);
      renderGate(report);
      renderSummary(report);
      renderSignals(report);
      renderWorst(report, deps.onOpenVehicle);
      renderDifferences(report);
      renderTransitions(transitions.items);
    } catch (error) {
      if (error instanceof Unauthorized) deps.onUnauthorized();
      else if (mine === asked && active) fail(`parity could not be read: ${(error as Error).message}`);
    }
  }

  return {
    show() {
      window.clearInterval(timer);
      active = true;
      // A tab in the background asks nothing; it catches up on the next tick after it is shown again.
      timer = window.setInterval(() => {
        if (document.visibilityState !== 'hidden') void load();
      }, refreshMs);
      void load();
    },
    refresh() {
      void load();
    },
    leave() {
      active = false;
      shown = false;
      asked += 1;
      window.clearInterval(timer);
      timer = undefined;
      windowHours = 24;
      markWindow();
      root.hidden = true;
      fail('');
    },
  };
}
