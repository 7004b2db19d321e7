/**
 * The workspace summary (status, freshness counts against the goal, the reasons) and the connection panel. The
 * summary is the server's judgement and is drawn from each health answer; connections are kept item by item, so
 * a connection event rewrites only the lines of that connection.
 */
import type { ConnectionHealth, Health } from './api-types.ts';
import { ago, since, until } from './clock.ts';
import { $, el, placeInOrder, setClass, setText } from './dom.ts';

const goal = 0.95;

export interface HealthPanel {
  /** The connections shown; connection events change them in place, then call `refresh`. */
  readonly connections: ConnectionHealth[];
  render(health: Health): void;
  refresh(connectionId: string): void;
  /** "last success 3 min ago" moves with the clock. */
  tick(): void;
}

interface ConnectionView {
  li: HTMLLIElement;
  name: HTMLSpanElement;
  badge: HTMLSpanElement;
  what: HTMLDivElement;
  success: HTMLDivElement;
  error: HTMLDivElement;
}

function connectionView(): ConnectionView {
  const name = el('span', { class: 'name' });
  const badge = el('span');
  const lines = { what: el('div', { class: 'detail' }), success: el('div', { class: 'detail' }), error: el('div', { class: 'detail' }) };
  return { name, badge, ...lines, li: el('li', { 'data-testid': 'connection' }, el('div', {}, name, ' ', badge), lines.what, lines.success, lines.error) };
}

function updateConnection(view: ConnectionView, c: ConnectionHealth): void {
  setText(view.name, c.label);
  setText(view.badge, c.status.replace('_', ' '));
  setClass(view.badge, `badge ${c.status}`);
  setText(view.what, `${c.provider}, ${c.transport} — ${c.detail}`);
  setText(view.success, `last success ${since(c.lastSuccessAt)}${c.nextAttemptAt ? `; next ${until(c.nextAttemptAt)}` : ''}`);
  view.error.hidden = c.lastError === null;
  setText(view.error, c.lastError ? `last error (${c.lastError.class}) ${since(c.lastError.at)}: ${c.lastError.message}` : '');
}

export function createHealthPanel(): HealthPanel {
  const views = new Map<string, ConnectionView>();
  let connections: ConnectionHealth[] = [];
  return {
    get connections() {
      return connections;
    },
    render(health) {
      $('workspace-name').textContent = health.name;
      const badge = $('workspace-status');
      badge.textContent = health.status;
      badge.className = `badge ${health.status}`;
      const counts = health.freshness.counts;
      for (const status of ['fresh', 'stale', 'silent', 'never'] as const) setText($(`count-${status}`), String(counts[status]));
      const ratio = health.freshness.freshRatio;
      setText($('fresh-ratio'), ratio === null ? '–' : `${Math.floor(ratio * 1000) / 10} %`);
      $<HTMLDivElement>('fresh-meter').style.width = `${(ratio ?? 0) * 100}%`;
      document.querySelector('.card.goal')!.classList.toggle('below', ratio !== null && ratio < goal);
      setText($('goal-text'), `synced within ${ago(health.freshness.thresholdSeconds)}; goal ${goal * 100} %`);
      $('reasons').replaceChildren(
        ...(health.reasons.length === 0
          ? [el('li', {}, 'All vehicles in sync, every connection working.')]
          : health.reasons.map((r) => el('li', {}, el('code', {}, r.code), ' ', r.detail))),
      );
      connections = health.connections;
      const ids = new Set(connections.map((c) => c.id));
      for (const id of views.keys()) if (!ids.has(id)) views.delete(id);
      const items = connections.map((c) => {
        const view = views.get(c.id) ?? connectionView();
        views.set(c.id, view);
        updateConnection(view, c);
        return view.li;
      });
      placeInOrder($('connections'), items);
    },
    refresh(connectionId) {
      const connection = connections.find((c) => c.id === connectionId);
      const view = views.get(connectionId);
      if (connection && view) updateConnection(view, connection);
    },
    tick() {
      for (const c of connections) updateConnection(views.get(c.id)!, c);
    },
  };
}
