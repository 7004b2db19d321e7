/**
 * The operator dashboard, served by core at `/`. It reads the same API everyone else does (a workspace key or the
 * admin token, kept in this tab's session storage), refreshes every 5 s, and renders with DOM text nodes only:
 * nothing from the API is ever parsed as HTML.
 */

type VehicleStatus = 'fresh' | 'stale' | 'silent' | 'never';

interface SignalState {
  value: unknown;
  observedAt: string;
}

interface Vehicle {
  id: string;
  name: string;
  vin: string | null;
  active: boolean;
  lastObservedAt: string | null;
  signals: Record<string, SignalState | undefined>;
  freshness: { status: VehicleStatus; syncAgeSeconds: number | null; observedAgeSeconds: number | null; reason: { code: string; detail: string } | null };
}

interface ConnectionHealth {
  id: string;
  provider: string;
  transport: string;
  label: string;
  status: string;
  detail: string;
  lastSuccessAt: string | null;
  lastError: { class: string; message: string; at: string | null } | null;
  nextAttemptAt: string | null;
}

interface Health {
  name: string;
  status: 'ok' | 'degraded' | 'failing';
  reasons: { code: string; detail: string }[];
  freshness: { thresholdSeconds: number; counts: Record<VehicleStatus, number>; freshRatio: number | null };
  connections: ConnectionHealth[];
}

interface Rejection {
  rejectedAt: string;
  reason: string;
  detail: string;
  externalDeviceId: string | null;
  signal: string | null;
}

const refreshMs = 5000;
const goal = 0.95;
const tokenKey = 'fleetwire.token';
const workspaceKey = 'fleetwire.workspace';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state: {
  token: string | null;
  workspaceId: string | null;
  vehicles: Vehicle[];
  filter: VehicleStatus | 'all';
  search: string;
  sort: { key: string; dir: 1 | -1 };
  selected: string | null;
  timer: number | undefined;
} = { token: null, workspaceId: null, vehicles: [], filter: 'all', search: '', sort: { key: 'name', dir: 1 }, selected: null, timer: undefined };

class Unauthorized extends Error {}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { authorization: `Bearer ${state.token}` } });
  if (response.status === 401) throw new Unauthorized('the key or token was not accepted');
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as { detail?: string };
    throw new Error(problem.detail ?? `${response.status} ${response.statusText}`);
  }
  return (await response.json()) as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string | null)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

function ago(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

function since(iso: string | null): string {
  return iso === null ? '–' : `${ago((Date.now() - Date.parse(iso)) / 1000)} ago`;
}

function until(iso: string | null): string {
  if (iso === null) return '';
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  return seconds <= 0 ? 'due now' : `in ${ago(seconds)}`;
}

/** The workspace a key belongs to (its id is part of the key), or null for the admin token. */
function workspaceOfKey(token: string): string | null {
  const match = /^fwk_([0-9a-f]{32})[0-9a-f]{32}_/.exec(token);
  if (!match) return null;
  const h = match[1]!;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function showSignin(message = ''): void {
  window.clearInterval(state.timer);
  state.token = null;
  sessionStorage.removeItem(tokenKey);
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $<HTMLInputElement>('token').focus();
}

async function signIn(token: string): Promise<void> {
  state.token = token;
  const keyWorkspace = workspaceOfKey(token);
  const picker = $<HTMLSelectElement>('workspace-picker');
  picker.replaceChildren();
  try {
    if (keyWorkspace) {
      state.workspaceId = keyWorkspace;
      picker.hidden = true;
      await api(`/v1/workspaces/${keyWorkspace}`);
    } else {
      const { items } = await api<{ items: { id: string; name: string }[] }>('/v1/workspaces');
      if (items.length === 0) throw new Error('there is no workspace yet');
      for (const w of items) picker.append(el('option', { value: w.id }, w.name));
      const remembered = sessionStorage.getItem(workspaceKey);
      state.workspaceId = items.some((w) => w.id === remembered) ? remembered : items[0]!.id;
      picker.value = state.workspaceId!;
      picker.hidden = items.length < 2;
    }
  } catch (error) {
    showSignin(error instanceof Unauthorized ? 'That key or token was not accepted.' : (error as Error).message);
    return;
  }
  sessionStorage.setItem(tokenKey, token);
  $('signin').hidden = true;
  $('app').hidden = false;
  await refresh();
  window.clearInterval(state.timer);
  state.timer = window.setInterval(() => void refresh(), refreshMs);
}

async function refresh(): Promise<void> {
  const ws = state.workspaceId;
  if (!ws || !state.token) return;
  try {
    const [health, vehicles, rejections] = await Promise.all([
      api<Health>(`/v1/workspaces/${ws}/health`),
      loadVehicles(ws),
      api<{ items: Rejection[] }>(`/v1/workspaces/${ws}/rejections?limit=50`),
    ]);
    if (ws !== state.workspaceId) return;
    state.vehicles = vehicles;
    renderHealth(health);
    renderVehicles();
    renderRejections(rejections.items);
    if (state.selected) await renderChart(state.selected);
    $('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof Unauthorized) showSignin('The key was revoked or the token changed; sign in again.');
    else $('refreshed').textContent = `refresh failed: ${(error as Error).message}`;
  }
}

async function loadVehicles(ws: string): Promise<Vehicle[]> {
  const all: Vehicle[] = [];
  let cursor: string | null = null;
  // A depot's fleet fits in a few pages; stop at 5,000 vehicles, which no table reads well anyway.
  for (let page = 0; page < 5; page += 1) {
    const answer: { items: Vehicle[]; nextCursor: string | null } = await api(`/v1/workspaces/${ws}/vehicles?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    all.push(...answer.items);
    cursor = answer.nextCursor;
    if (!cursor) break;
  }
  return all;
}

function renderHealth(health: Health): void {
  $('workspace-name').textContent = health.name;
  const badge = $('workspace-status');
  badge.textContent = health.status;
  badge.className = `badge ${health.status}`;
  const counts = health.freshness.counts;
  for (const status of ['fresh', 'stale', 'silent', 'never'] as const) $(`count-${status}`).textContent = String(counts[status]);
  const ratio = health.freshness.freshRatio;
  $('fresh-ratio').textContent = ratio === null ? '–' : `${Math.floor(ratio * 1000) / 10} %`;
  $<HTMLDivElement>('fresh-meter').style.width = `${(ratio ?? 0) * 100}%`;
  document.querySelector('.card.goal')!.classList.toggle('below', ratio !== null && ratio < goal);
  $('goal-text').textContent = `synced within ${ago(health.freshness.thresholdSeconds)}; goal ${goal * 100} %`;
  const reasons = $('reasons');
  reasons.replaceChildren(
    ...(health.reasons.length === 0
      ? [el('li', {}, 'All vehicles in sync, every connection working.')]
      : health.reasons.map((r) => el('li', {}, el('code', {}, r.code), ' ', r.detail))),
  );
  const list = $('connections');
  list.replaceChildren(
    ...health.connections.map((c) =>
      el(
        'li',
        { 'data-testid': 'connection' },
        el('div', {}, el('span', { class: 'name' }, c.label), ' ', el('span', { class: `badge ${c.status}` }, c.status.replace('_', ' '))),
        el('div', { class: 'detail' }, `${c.provider}, ${c.transport} — ${c.detail}`),
        el('div', { class: 'detail' }, `last success ${since(c.lastSuccessAt)}${c.nextAttemptAt ? `; next ${until(c.nextAttemptAt)}` : ''}`),
        c.lastError ? el('div', { class: 'detail' }, `last error (${c.lastError.class}) ${since(c.lastError.at)}: ${c.lastError.message}`) : null,
      ),
    ),
  );
}

function sortValue(v: Vehicle, key: string): number | string {
  const n = (signal: string) => (typeof v.signals[signal]?.value === 'number' ? (v.signals[signal]!.value as number) : -1);
  switch (key) {
    case 'status':
      return ['stale', 'never', 'silent', 'fresh'].indexOf(v.freshness.status);
    case 'soc':
      return n('soc_pct');
    case 'speed':
      return n('speed_kph');
    case 'charging':
      return String(v.signals.charging_state?.value ?? '');
    case 'observed':
      return v.freshness.observedAgeSeconds ?? Number.MAX_SAFE_INTEGER;
    case 'sync':
      return v.freshness.syncAgeSeconds ?? Number.MAX_SAFE_INTEGER;
    default:
      return v.name.toLowerCase();
  }
}

function renderVehicles(): void {
  const search = state.search.toLowerCase();
  const rows = state.vehicles
    .filter((v) => state.filter === 'all' || v.freshness.status === state.filter)
    .filter((v) => !search || v.name.toLowerCase().includes(search) || (v.vin ?? '').toLowerCase().includes(search))
    .sort((a, b) => {
      const x = sortValue(a, state.sort.key);
      const y = sortValue(b, state.sort.key);
      return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir || a.name.localeCompare(b.name);
    });
  $('vehicle-rows').replaceChildren(...rows.map(vehicleRow));
  $('vehicles-empty').hidden = rows.length > 0;
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    if (th.dataset.sort === state.sort.key) th.setAttribute('aria-sort', state.sort.dir === 1 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  for (const chip of document.querySelectorAll<HTMLElement>('[data-filter]')) chip.setAttribute('aria-pressed', String(chip.dataset.filter === state.filter));
  for (const card of document.querySelectorAll<HTMLElement>('.count[data-status]')) card.setAttribute('aria-pressed', String(card.dataset.status === state.filter));
}

function vehicleRow(v: Vehicle): HTMLTableRowElement {
  const soc = v.signals.soc_pct?.value;
  const socCell =
    typeof soc === 'number'
      ? el(
          'div',
          { class: 'soc' },
          el('div', { class: `bar ${soc < 20 ? 'low' : soc < 40 ? 'mid' : ''}` }, fill(soc)),
          `${soc.toFixed(0)} %`,
        )
      : '–';
  const charging = v.signals.charging_state?.value;
  const plugged = v.signals.plugged_in?.value;
  const chargingText = [typeof charging === 'string' ? charging.replace('_', ' ') : null, plugged === true ? 'plugged in' : plugged === false ? 'unplugged' : null]
    .filter(Boolean)
    .join(', ');
  const location = v.signals.location?.value as { lat: number; lon: number } | undefined;
  const speed = v.signals.speed_kph?.value;
  const status = v.freshness.status;
  const statusCell = el('td', {}, el('span', { class: `badge ${status}`, 'data-testid': 'vehicle-status' }, status));
  if (v.freshness.reason) statusCell.append(el('span', { class: 'why', title: v.freshness.reason.detail }, v.freshness.reason.detail));
  const row = el(
    'tr',
    { 'data-vehicle': v.id, 'data-testid': 'vehicle-row', class: state.selected === v.id ? 'selected' : '' },
    el('td', {}, v.name),
    statusCell,
    el('td', {}, socCell),
    el('td', {}, chargingText || '–'),
    el('td', {}, typeof speed === 'number' ? `${speed.toFixed(0)} km/h` : '–'),
    el('td', {}, location ? `${location.lat.toFixed(4)}, ${location.lon.toFixed(4)}` : '–'),
    el('td', {}, v.lastObservedAt ? `${ago(v.freshness.observedAgeSeconds)} ago` : 'never'),
    el('td', {}, ago(v.freshness.syncAgeSeconds)),
  );
  row.addEventListener('click', () => void selectVehicle(v.id));
  return row;
}

/** The filled part of a bar; set through the style object, which the content security policy allows. */
function fill(percent: number): HTMLDivElement {
  const inner = el('div');
  inner.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return inner;
}

function renderRejections(items: Rejection[]): void {
  const counts = new Map<string, number>();
  for (const r of items) counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
  $('rejection-reasons').replaceChildren(
    ...(counts.size === 0 ? [el('li', {}, 'none lately')] : [...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => el('li', { 'data-testid': 'rejection-reason' }, `${reason} ${n}`))),
  );
  $('rejections').replaceChildren(
    ...items.slice(0, 8).map((r) =>
      el('li', {}, el('code', {}, r.reason), ` ${since(r.rejectedAt)} — ${r.externalDeviceId ?? 'unknown device'}${r.signal ? ` ${r.signal}` : ''}: ${r.detail}`),
    ),
  );
}

async function selectVehicle(id: string): Promise<void> {
  state.selected = id;
  renderVehicles();
  $('chart-panel').hidden = false;
  await renderChart(id);
}

interface Point {
  t: number;
  v: number;
}

async function loadHistory(vehicleId: string, signal: string, fromIso: string): Promise<Point[]> {
  const answer = await api<{ items: { value: unknown; observedAt: string }[] }>(
    `/v1/workspaces/${state.workspaceId}/vehicles/${vehicleId}/history?signal=${signal}&from=${encodeURIComponent(fromIso)}&limit=5000`,
  );
  return answer.items.filter((i) => typeof i.value === 'number').map((i) => ({ t: Date.parse(i.observedAt), v: i.value as number }));
}

async function renderChart(vehicleId: string): Promise<void> {
  const vehicle = state.vehicles.find((v) => v.id === vehicleId);
  $('chart-title').textContent = vehicle ? `${vehicle.name}: last 24 h` : 'History';
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const [soc, speed] = await Promise.all([loadHistory(vehicleId, 'soc_pct', from), loadHistory(vehicleId, 'speed_kph', from)]);
  if (state.selected !== vehicleId) return;
  $('chart').replaceChildren(chart(soc, speed));
}

const svgNs = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Two series on one time axis: state of charge on 0..100, speed scaled to its own maximum (right axis). */
function chart(soc: Point[], speed: Point[]): SVGElement {
  const width = 360;
  const height = 220;
  const pad = { left: 30, right: 36, top: 10, bottom: 22 };
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'state of charge and speed over time' });
  const all = [...soc, ...speed];
  if (all.length === 0) {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'no readings in the last 24 h'));
    return root;
  }
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t), t0 + 60_000);
  const maxSpeed = Math.max(10, ...speed.map((p) => p.v));
  const x = (t: number) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (fraction: number) => height - pad.bottom - fraction * (height - pad.top - pad.bottom);
  root.append(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }));
  for (const level of [0, 50, 100]) {
    root.append(svg('text', { x: pad.left - 4, y: y(level / 100) + 3, 'text-anchor': 'end' }, `${level}`));
    root.append(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: y(level / 100), y2: y(level / 100) }));
  }
  root.append(svg('text', { x: width - pad.right + 4, y: y(1) + 3 }, `${Math.round(maxSpeed)}`));
  root.append(svg('text', { x: width - pad.right + 4, y: y(0) + 3 }, '0'));
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    root.append(svg('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' }, new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
  }
  const line = (points: Point[], scale: (v: number) => number, cls: string) => {
    if (points.length === 0) return;
    root.append(svg('polyline', { class: cls, points: points.map((p) => `${x(p.t).toFixed(1)},${y(scale(p.v)).toFixed(1)}`).join(' ') }));
  };
  line(soc, (v) => v / 100, 'soc-line');
  line(speed, (v) => v / maxSpeed, 'speed-line');
  return root;
}

function wire(): void {
  $<HTMLFormElement>('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $<HTMLInputElement>('token').value.trim();
    if (token) void signIn(token);
  });
  $('signout').addEventListener('click', () => showSignin());
  $<HTMLSelectElement>('workspace-picker').addEventListener('change', (event) => {
    state.workspaceId = (event.target as HTMLSelectElement).value;
    sessionStorage.setItem(workspaceKey, state.workspaceId);
    state.selected = null;
    $('chart-panel').hidden = true;
    void refresh();
  });
  for (const chip of document.querySelectorAll<HTMLElement>('[data-filter], .count[data-status]')) {
    chip.addEventListener('click', () => {
      const wanted = (chip.dataset.filter ?? chip.dataset.status) as VehicleStatus | 'all';
      state.filter = state.filter === wanted && chip.dataset.status ? 'all' : wanted;
      renderVehicles();
    });
  }
  $<HTMLInputElement>('search').addEventListener('input', (event) => {
    state.search = (event.target as HTMLInputElement).value;
    renderVehicles();
  });
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    th.addEventListener('click', () => {
      const key = th.dataset.sort!;
      state.sort = { key, dir: state.sort.key === key ? (state.sort.dir === 1 ? -1 : 1) : 1 };
      renderVehicles();
    });
  }
  $('chart-close').addEventListener('click', () => {
    state.selected = null;
    $('chart-panel').hidden = true;
    renderVehicles();
  });
}

function start(): void {
  wire();
  // A sign-in link (#key=...) signs in at once; the key leaves the address bar and the history right away.
  const fromLink = new URLSearchParams(window.location.hash.slice(1)).get('key');
  if (fromLink) forgetSignInLink();
  const token = fromLink ?? sessionStorage.getItem(tokenKey);
  if (token) void signIn(token);
  else showSignin();
}

function forgetSignInLink(): void {
  window.history.replaceState(null, '', window.location.pathname);
}

start();
