/**
 * The operator dashboard, served by core at `/`. It reads the same API everyone else does (a workspace key or the
 * admin token, kept in this tab's session storage), follows the workspace's event stream so rows change as events
 * arrive, and renders with DOM text nodes only: nothing from the API is ever parsed as HTML.
 *
 * Each time the stream opens, the dashboard loads everything once, after the stream has answered: the stream
 * starts at the log head the server had when it answered (or after the last event this tab saw), so the load holds
 * everything before that and the stream brings everything after it. Events that arrive during a load wait for it
 * and are applied on top, where observed times keep them from undoing anything newer.
 */
import type { FleetEvent, Health, Rejection, Vehicle, VehicleStatus } from './api-types.ts';
import { applyEvent } from './apply-event.ts';
import { addPoint, chart, chartSpanMs, type Point } from './chart.ts';
import { learnServerClock, serverNow, since } from './clock.ts';
import { $, el, setText } from './dom.ts';
import { followEventStream, type EventStream, type StreamStatus } from './event-stream.ts';
import { createHealthPanel } from './health-panel.ts';
import type { SseMessage } from './sse-parser.ts';
import { createVehicleTable } from './vehicle-table.ts';

const tokenKey = 'fleetwire.token';
const workspaceKey = 'fleetwire.workspace';
/** What the view shows of the catalogue: SoC crossings and cutovers change nothing in it. */
const streamTypes = [
  'fleetwire.vehicle.state.changed',
  'fleetwire.vehicle.charging.started',
  'fleetwire.vehicle.charging.stopped',
  'fleetwire.vehicle.freshness.changed',
  'fleetwire.connection.health.changed',
];
/**
 * One full load every five minutes even while the stream is live: vehicles registered, renamed or deactivated,
 * rejections and connections' last and next poll times change without an event, and whatever a live stream might
 * miss cannot leave the view wrong for longer than this. It is not what keeps rows current: events are.
 */
const safetyReloadMs = 5 * 60_000;
/** Ages ("12 s ago") move with time rather than with events; their text is brought up to date this often. */
const ageTickMs = 5000;
/** The summary (status, reasons, counts) is the server's judgement: asked again once a burst of turns is over. */
const healthAfterEventMs = 1000;

interface ChartData {
  vehicleId: string;
  soc: Point[];
  speed: Point[];
}

const state: {
  token: string | null;
  workspaceId: string | null;
  vehicles: Map<string, Vehicle>;
  filter: VehicleStatus | 'all';
  search: string;
  sort: { key: string; dir: 1 | -1 };
  selected: string | null;
  chart: ChartData | null;
  stream: EventStream | undefined;
  timers: number[];
  healthTimer: number | undefined;
  /** Numbers of the last full load and of the last health request started: an older answer is not shown. */
  lastLoad: number;
  lastHealth: number;
  /** Full loads in flight, and the events that wait for them. */
  loading: number;
  held: FleetEvent[];
  loaded: boolean;
  dirty: Set<string>;
  renderQueued: boolean;
} = {
  token: null,
  workspaceId: null,
  vehicles: new Map(),
  filter: 'all',
  search: '',
  sort: { key: 'name', dir: 1 },
  selected: null,
  chart: null,
  stream: undefined,
  timers: [],
  healthTimer: undefined,
  lastLoad: 0,
  lastHealth: 0,
  loading: 0,
  held: [],
  loaded: false,
  dirty: new Set(),
  renderQueued: false,
};

const table = createVehicleTable($('vehicle-rows'), (id) => void selectVehicle(id));
const healthPanel = createHealthPanel();
let rejectionTexts: { text: Text; rejection: Rejection }[] = [];

class Unauthorized extends Error {}

async function api<T>(path: string): Promise<T> {
  // An answer that takes this long is not coming: the load fails and is tried again rather than hanging the view.
  const response = await fetch(path, { headers: { authorization: `Bearer ${state.token}` }, signal: AbortSignal.timeout(30_000) });
  if (response.status === 401) throw new Unauthorized('the key or token was not accepted');
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as { detail?: string };
    throw new Error(problem.detail ?? `${response.status} ${response.statusText}`);
  }
  return (await response.json()) as T;
}

/** The workspace a key belongs to (its id is part of the key), or null for the admin token. */
function workspaceOfKey(token: string): string | null {
  const match = /^fwk_([0-9a-f]{32})[0-9a-f]{32}_/.exec(token);
  if (!match) return null;
  const h = match[1]!;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function showSignin(message = ''): void {
  stopLive();
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
  startLive();
}

const refusedMessages: Record<number, string> = {
  401: 'The key was revoked or the token changed; sign in again.',
  403: 'This key may not read the events of this workspace; sign in with another.',
  404: 'The workspace is gone; sign in again.',
};

/** Follows the workspace's events; every (re)connection loads everything once (see the top of this file). */
function startLive(): void {
  stopLive();
  const ws = state.workspaceId;
  if (!ws || !state.token) return;
  state.stream = followEventStream({
    path: `/v1/workspaces/${ws}/events?types=${streamTypes.join(',')}`,
    token: state.token,
    onOpen: () => reload(),
    onMessage: receive,
    onStatus(status) {
      showStreamStatus(status);
      // A stream that cannot open must not leave the page empty: show what can be loaded while it retries.
      if (status.state === 'reconnecting' && !state.loaded) void reload().catch(() => undefined);
    },
    onRefused: (status) => showSignin(refusedMessages[status]),
  });
  state.timers.push(
    window.setInterval(() => void reload().catch(() => undefined), safetyReloadMs),
    window.setInterval(tickAges, ageTickMs),
  );
}

function stopLive(): void {
  state.stream?.close();
  state.stream = undefined;
  for (const timer of state.timers) window.clearInterval(timer);
  state.timers = [];
  window.clearTimeout(state.healthTimer);
  state.held = [];
  state.loaded = false;
}

function showStreamStatus(status: StreamStatus): void {
  const badge = $('live');
  badge.dataset.state = status.state;
  if (status.state === 'live') {
    setText(badge, 'Live');
    badge.title = 'Following the event stream: rows change as events arrive.';
  } else if (status.state === 'connecting') {
    setText(badge, 'Connecting…');
    badge.title = '';
  } else {
    setText(badge, `Reconnecting… since ${new Date(status.since).toLocaleTimeString()}`);
    badge.title = `${status.reason}; next attempt at ${new Date(status.retryAt).toLocaleTimeString()}`;
  }
}

/**
 * Loads the summary, every vehicle and the rejections. Events that arrive meanwhile wait and are applied after it,
 * whether it succeeds or not, so none the stream delivered is lost. Rejects when it fails (the stream, which
 * reloads on open, then drops and tries again).
 */
async function reload(): Promise<void> {
  const ws = state.workspaceId;
  if (!ws || !state.token) return;
  const load = (state.lastLoad += 1);
  const healthAsked = (state.lastHealth += 1);
  state.loading += 1;
  try {
    const [answer, vehicles, rejections] = await Promise.all([
      api<Health>(`/v1/workspaces/${ws}/health`),
      loadVehicles(ws),
      api<{ items: Rejection[] }>(`/v1/workspaces/${ws}/rejections?limit=50`),
    ]);
    // A later load, or another workspace, supersedes this one: its answer may predate what events told since.
    if (load !== state.lastLoad || ws !== state.workspaceId) return;
    learnServerClock(vehicles);
    state.vehicles = new Map(vehicles.map((v) => [v.id, v]));
    table.load(vehicles);
    state.loaded = true;
    if (healthAsked === state.lastHealth) healthPanel.render(answer);
    renderRejections(rejections.items);
    renderVehicles();
    if (state.selected) void renderChart(state.selected);
    $('refreshed').textContent = '';
  } catch (error) {
    if (error instanceof Unauthorized) showSignin('The key was revoked or the token changed; sign in again.');
    else if (ws === state.workspaceId) $('refreshed').textContent = `refresh failed: ${(error as Error).message}`;
    throw error;
  } finally {
    state.loading -= 1;
    if (state.loading === 0) {
      const held = state.held;
      state.held = [];
      for (const event of held) apply(event);
    }
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

function receive(message: SseMessage): void {
  let event: FleetEvent;
  try {
    event = JSON.parse(message.data) as FleetEvent;
  } catch {
    // A frame that is not JSON tells nothing; the stream goes on.
    return;
  }
  if (typeof event !== 'object' || event === null || typeof event.type !== 'string' || typeof event.data !== 'object' || event.data === null) return;
  if (state.loading > 0) state.held.push(event);
  else apply(event);
}

function apply(event: FleetEvent): void {
  const effect = applyEvent(state.vehicles, healthPanel.connections, event);
  if (!effect) return;
  if (effect.kind === 'connection') {
    healthPanel.refresh(effect.connectionId);
    healthSoon();
    return;
  }
  state.dirty.add(effect.vehicleId);
  if (effect.freshness) healthSoon();
  if (state.chart?.vehicleId === effect.vehicleId) addToChart(state.chart, effect.signals);
  if (!state.renderQueued) {
    state.renderQueued = true;
    // One render per frame however many events a chunk of the stream held.
    window.requestAnimationFrame(() => {
      state.renderQueued = false;
      for (const id of state.dirty) table.refresh(id);
      state.dirty.clear();
      renderVehicles();
    });
  }
}

function healthSoon(): void {
  window.clearTimeout(state.healthTimer);
  state.healthTimer = window.setTimeout(() => void reloadHealth(), healthAfterEventMs);
}

async function reloadHealth(): Promise<void> {
  const ws = state.workspaceId;
  if (!ws || !state.token) return;
  const asked = (state.lastHealth += 1);
  try {
    const answer = await api<Health>(`/v1/workspaces/${ws}/health`);
    if (asked === state.lastHealth && ws === state.workspaceId) healthPanel.render(answer);
  } catch (error) {
    if (error instanceof Unauthorized) showSignin('The key was revoked or the token changed; sign in again.');
  }
}

function renderVehicles(): void {
  const shown = table.place(state);
  $('vehicles-empty').hidden = shown > 0;
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    if (th.dataset.sort === state.sort.key) th.setAttribute('aria-sort', state.sort.dir === 1 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  for (const chip of document.querySelectorAll<HTMLElement>('[data-filter]')) chip.setAttribute('aria-pressed', String(chip.dataset.filter === state.filter));
  for (const card of document.querySelectorAll<HTMLElement>('.count[data-status]')) card.setAttribute('aria-pressed', String(card.dataset.status === state.filter));
}

const rejectionText = (r: Rejection) => ` ${since(r.rejectedAt)} — ${r.externalDeviceId ?? 'unknown device'}${r.signal ? ` ${r.signal}` : ''}: ${r.detail}`;

function renderRejections(items: Rejection[]): void {
  const counts = new Map<string, number>();
  for (const r of items) counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
  $('rejection-reasons').replaceChildren(
    ...(counts.size === 0 ? [el('li', {}, 'none lately')] : [...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => el('li', { 'data-testid': 'rejection-reason' }, `${reason} ${n}`))),
  );
  rejectionTexts = items.slice(0, 8).map((rejection) => ({ text: document.createTextNode(rejectionText(rejection)), rejection }));
  $('rejections').replaceChildren(...rejectionTexts.map(({ text, rejection }) => el('li', {}, el('code', {}, rejection.reason), text)));
}

function tickAges(): void {
  table.tick();
  healthPanel.tick();
  for (const { text, rejection } of rejectionTexts) setText(text, rejectionText(rejection));
}

async function selectVehicle(id: string): Promise<void> {
  state.selected = id;
  renderVehicles();
  $('chart-panel').hidden = false;
  await renderChart(id);
}

async function loadHistory(vehicleId: string, signal: string, fromIso: string): Promise<Point[]> {
  const answer = await api<{ items: { value: unknown; observedAt: string }[] }>(
    `/v1/workspaces/${state.workspaceId}/vehicles/${vehicleId}/history?signal=${signal}&from=${encodeURIComponent(fromIso)}&limit=5000`,
  );
  return answer.items.filter((i) => typeof i.value === 'number').map((i) => ({ t: Date.parse(i.observedAt), v: i.value as number }));
}

async function renderChart(vehicleId: string): Promise<void> {
  const vehicle = state.vehicles.get(vehicleId);
  $('chart-title').textContent = vehicle ? `${vehicle.name}: last 24 h` : 'History';
  const from = new Date(serverNow() - chartSpanMs).toISOString();
  try {
    const [soc, speed] = await Promise.all([loadHistory(vehicleId, 'soc_pct', from), loadHistory(vehicleId, 'speed_kph', from)]);
    if (state.selected !== vehicleId) return;
    state.chart = { vehicleId, soc, speed };
    $('chart').replaceChildren(chart(soc, speed));
  } catch (error) {
    if (error instanceof Unauthorized) showSignin('The key was revoked or the token changed; sign in again.');
    else $('chart').replaceChildren(el('p', { class: 'muted' }, `history failed: ${(error as Error).message}`));
  }
}

/** Readings that arrived by event join the selected vehicle's chart, without asking for its history again. */
function addToChart(data: ChartData, signals: readonly string[]): void {
  const vehicle = state.vehicles.get(data.vehicleId);
  if (!vehicle) return;
  let changed = false;
  for (const [signal, points] of [
    ['soc_pct', data.soc],
    ['speed_kph', data.speed],
  ] as const) {
    const reading = signals.includes(signal) ? vehicle.signals[signal] : undefined;
    if (reading && typeof reading.value === 'number') changed = addPoint(points, { t: Date.parse(reading.observedAt), v: reading.value }, serverNow()) || changed;
  }
  if (changed) $('chart').replaceChildren(chart(data.soc, data.speed));
}

function closeChart(): void {
  state.selected = null;
  state.chart = null;
  $('chart-panel').hidden = true;
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
    closeChart();
    startLive();
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
    closeChart();
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
