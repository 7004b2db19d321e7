/**
 * The fleet overview, the admin's first view: every workspace with its health (status, the share of vehicles in sync
 * against the goal, counts by freshness, connections in trouble, the first reason), worst first as `GET /v1/health`
 * answers. A click opens the workspace. At phone width each row becomes a card of labelled cells. "New workspace"
 * creates one (`POST /v1/workspaces`) and opens it on its settings, where its policy is set next.
 */
import type { FleetHealth, Workspace } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { el, setText, $ } from './dom.ts';
import { formMessage, onSubmit } from './forms.ts';

/** No event stream spans workspaces: the overview asks for the fleet's health again this often while it is shown. */
const refreshMs = 15_000;

function cell(label: string, ...children: (Node | string)[]): HTMLTableCellElement {
  return el('td', { 'data-label': label }, ...children);
}

function renderOverview(fleet: FleetHealth, onOpen: (workspaceId: string) => void): void {
  const badge = $('fleet-status');
  badge.className = `badge ${fleet.status}`;
  setText(badge, fleet.status);
  setText($('fleet-counts'), `${fleet.items.length} workspaces: ${fleet.counts.ok} ok, ${fleet.counts.degraded} degraded, ${fleet.counts.failing} failing, ${fleet.counts.disabled} disabled`);
  const rows = fleet.items.map((w) => {
    const counts = w.freshness.counts;
    const trouble = w.connections.filter((c) => c.status !== 'ok' && c.status !== 'disabled').length;
    const reason = w.reasons[0];
    const open = el('button', { type: 'button', class: 'link name' }, w.name);
    const tr = el(
      'tr',
      { 'data-testid': 'workspace-row', 'data-workspace': w.workspaceId },
      cell('Workspace', open),
      cell('Health', el('span', { class: `badge ${w.status}`, 'data-testid': 'workspace-health' }, w.status)),
      cell('In sync', w.freshness.freshRatio === null ? '–' : `${Math.floor(w.freshness.freshRatio * 1000) / 10} %`),
      cell('Vehicles', `${counts.fresh} fresh · ${counts.stale} stale · ${counts.silent} silent · ${counts.never} never`),
      cell('Connections', `${w.connections.length}${trouble > 0 ? ` (${trouble} in trouble)` : ''}`),
      cell('Why', reason ? el('span', { class: 'why-text' }, el('code', {}, reason.code), ` ${reason.detail}`) : 'all well'),
    );
    tr.addEventListener('click', () => onOpen(w.workspaceId));
    return tr;
  });
  $('overview-rows').replaceChildren(...rows);
  $('overview-empty').hidden = rows.length > 0;
}

export function createOverview(deps: { api: Api; onOpen(workspaceId: string): void; onCreated(workspace: Workspace): void; onUnauthorized(): void }): { show(): Promise<void>; stop(): void } {
  let timer: number | undefined;
  let shown = false;
  const form = $<HTMLFormElement>('new-workspace-form');
  const name = $<HTMLInputElement>('new-workspace-name');
  const message = formMessage('new-workspace-message');
  form.append(message.node);
  onSubmit(form, message, deps.onUnauthorized, async () => {
    const workspace = await deps.api.send<Workspace>('POST', '/v1/workspaces', { name: name.value.trim() });
    name.value = '';
    deps.onCreated(workspace);
    return `Workspace "${workspace.name}" created.`;
  });
  async function load(): Promise<void> {
    try {
      const fleet = await deps.api.get<FleetHealth>('/v1/health');
      if (shown) renderOverview(fleet, deps.onOpen);
    } catch (error) {
      if (error instanceof Unauthorized) deps.onUnauthorized();
      else setText($('fleet-counts'), `fleet health failed: ${(error as Error).message}`);
    }
  }
  return {
    async show() {
      shown = true;
      window.clearInterval(timer);
      timer = window.setInterval(() => void load(), refreshMs);
      await load();
    },
    stop() {
      shown = false;
      window.clearInterval(timer);
    },
  };
}
