/**
 * The operator dashboard, served by core at `/`. It reads the same API everyone else does (a workspace key or the
 * admin token, kept in this tab's session storage), follows the workspace's event stream so rows change as events
 * arrive, and renders with DOM text nodes only: nothing from the API is ever parsed as HTML.
 *
 * Each time the stream opens, the dashboard loads everything once, after the stream has answered: the stream
 * starts at the log head the server had when it answered (or after the last event this tab saw), so the load holds
 * everything before that and the stream brings everything after it. Events that arrive during a load wait for it
 * and are applied on top, where observed times keep them from undoing anything newer.
 *
 * Four views: the fleet overview (every workspace's health, and "New workspace"; the admin token's first view), a
 * workspace (summary, map, vehicles with their charge readiness, the vehicle panel, connections, rejections), its
 * onboarding (discovered devices to bind or ignore; connections added, changed, removed) and, for the admin, its
 * settings (name, policy, cutover with the migration's parity, API keys).
 */
import type { FleetEvent, Health, Rejection, Vehicle, VehicleStatus, Workspace } from './api-types.ts';
import { createApi, loadVehicles, Unauthorized, workspaceOfKey } from './api.ts';
import { applyEvent } from './apply-event.ts';
import { learnServerClock } from './clock.ts';
import { $ } from './dom.ts';
import { followEventStream, showStreamStatus, type EventStream } from './event-stream.ts';
import { createFleetMap, type FleetMap, type MapConfig } from './fleet-map.ts';
import { createHealthPanel } from './health-panel.ts';
import { createOnboarding } from './onboarding.ts';
import { createOverview } from './overview.ts';
import { chargeTarget } from './readiness.ts';
import { createReadinessBook } from './readiness-book.ts';
import { createRejectionsPanel } from './rejections-panel.ts';
import type { SseMessage } from './sse-parser.ts';
import { createVehiclePanel } from './vehicle-panel.ts';
import { markVehicleControls, wireVehicleControls } from './vehicle-controls.ts';
import { createVehicleTable } from './vehicle-table.ts';
import { createWorkspacePicker } from './workspace-picker.ts';
import { createSettings } from './workspace-settings.ts';

const tokenKey = 'fleetwire.token';
/** What the view shows of the catalogue: SoC crossings change nothing in it; a cutover changes the migration panel. */
const streamTypes = [
  'fleetwire.vehicle.state.changed',
  'fleetwire.vehicle.charging.started',
  'fleetwire.vehicle.charging.stopped',
  'fleetwire.vehicle.freshness.changed',
  'fleetwire.connection.health.changed',
  'fleetwire.workspace.cutover.changed',
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

type View = 'overview' | 'workspace' | 'onboarding' | 'settings';

const state = {
  token: null as string | null,
  admin: false,
  view: 'workspace' as View,
  workspaceId: null as string | null,
  vehicles: new Map<string, Vehicle>(),
  filter: 'all' as VehicleStatus | 'all',
  search: '',
  sort: { key: 'name', dir: 1 as 1 | -1 },
  stream: undefined as EventStream | undefined,
  timers: [] as number[],
  healthTimer: undefined as number | undefined,
  /** Numbers of the last full load and of the last health request started: an older answer is not shown. */
  lastLoad: 0,
  lastHealth: 0,
  /** Full loads in flight, and the events that wait for them. */
  loading: 0,
  held: [] as FleetEvent[],
  loaded: false,
  dirty: new Set<string>(),
  renderQueued: false,
};

const api = createApi(() => state.token);
const signedOut = () => showSignin('The key was revoked or the token changed; sign in again.');

const readinessBook = createReadinessBook();
const table = createVehicleTable($('vehicle-rows'), (id) => void selectVehicle(id), readinessBook.of);
const healthPanel = createHealthPanel();
const panel = createVehiclePanel({
  api,
  workspaceId: () => state.workspaceId,
  vehicle: (id) => state.vehicles.get(id),
  target: () => readinessBook.targetPct,
  readiness: (v) => readinessBook.of(v).readiness,
  capacities: readinessBook.capacities,
  onHistory: (id, points) => {
    readinessBook.add(id, points);
    table.refresh(id);
  },
  onUnauthorized: signedOut,
  onLearned: (id) => table.refresh(id),
});
const onboarding = createOnboarding({
  api,
  workspaceId: () => state.workspaceId,
  admin: () => state.admin,
  vehicles: () => [...state.vehicles.values()].sort((a, b) => a.name.localeCompare(b.name)),
  onBound: () => void reload().catch(() => undefined),
  onUnauthorized: signedOut,
});
let fleetMap: FleetMap | undefined;
const mapConfig: Promise<MapConfig> = fetch('/dashboard-config.json')
  .then(async (answer) => ((await answer.json()) as { map: MapConfig }).map)
  .catch(() => ({ tileUrl: null, attribution: null }));
const rejectionsPanel = createRejectionsPanel();
const overview = createOverview({
  api,
  onOpen: (id) => showWorkspace(id, 'workspace'),
  onCreated: (workspace) => {
    picker.list(workspace);
    showWorkspace(workspace.id, 'settings');
  },
  onUnauthorized: signedOut,
});
const settings = createSettings({
  api,
  workspaceId: () => state.workspaceId,
  onChanged: (workspace) => {
    picker.list(workspace);
    void reload().catch(() => undefined);
  },
  onOpenVehicle: (id) => {
    if (!state.workspaceId) return;
    showWorkspace(state.workspaceId, 'workspace');
    void selectVehicle(id);
  },
  onUnauthorized: signedOut,
});
const picker = createWorkspacePicker((id) => (id ? showWorkspace(id, state.view === 'overview' ? 'workspace' : state.view) : void showOverview()));

function showSignin(message = ''): void {
  stopLive();
  // Nothing typed or shown once (credentials, a new key) stays in the page of a signed-out tab.
  onboarding.leave();
  settings.leave();
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
  picker.fill(null);
  try {
    if (keyWorkspace) {
      await api.get(`/v1/workspaces/${keyWorkspace}`);
      state.admin = false;
      state.workspaceId = keyWorkspace;
    } else {
      const { items } = await api.get<{ items: { id: string; name: string }[] }>('/v1/workspaces');
      state.admin = true;
      picker.fill(items);
    }
  } catch (error) {
    showSignin(error instanceof Unauthorized ? 'That key or token was not accepted.' : (error as Error).message);
    return;
  }
  sessionStorage.setItem(tokenKey, token);
  $('signin').hidden = true;
  $('app').hidden = false;
  $('nav-overview').hidden = !state.admin;
  // The admin token sees every workspace: its first view is all of them, not one picked for it.
  if (state.admin) void showOverview();
  else showWorkspace(keyWorkspace!, 'workspace');
}

function setView(view: View): void {
  if (state.view === 'onboarding' && view !== 'onboarding') onboarding.leave();
  if (state.view === 'settings' && view !== 'settings') settings.leave();
  state.view = view;
  for (const page of ['overview', 'workspace', 'onboarding', 'settings'] as const) $(page).hidden = view !== page;
  for (const tab of document.querySelectorAll<HTMLElement>('[data-view]')) tab.setAttribute('aria-current', String(tab.dataset.view === view));
  for (const tab of document.querySelectorAll<HTMLElement>('[data-view=workspace], [data-view=onboarding]')) tab.hidden = state.workspaceId === null;
  $('nav-settings').hidden = state.workspaceId === null || !state.admin;
  $('workspace-heading').hidden = view === 'overview';
  $('live').hidden = view === 'overview';
  if (view === 'workspace') fleetMap?.resize();
}

async function showOverview(): Promise<void> {
  stopLive();
  state.workspaceId = null;
  picker.select(null);
  setView('overview');
  await overview.show();
}

function showWorkspace(workspaceId: string, view: Exclude<View, 'overview'>): void {
  const changed = workspaceId !== state.workspaceId || !state.stream;
  state.workspaceId = workspaceId;
  picker.select(workspaceId);
  if (changed) {
    onboarding.leave();
    settings.leave();
    panel.close();
    state.vehicles = new Map();
    readinessBook.clear();
    table.load([]);
    fleetMap?.load([]);
    startLive();
  }
  setView(view);
  if (view === 'onboarding') void onboarding.load();
  if (view === 'settings') void settings.load();
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
  overview.stop();
  state.stream?.close();
  state.stream = undefined;
  for (const timer of state.timers) window.clearInterval(timer);
  state.timers = [];
  window.clearTimeout(state.healthTimer);
  state.held = [];
  state.loaded = false;
}

/**
 * Loads the summary, the policy, every vehicle and the rejections. Events that arrive meanwhile wait and are applied
 * after it, whether it succeeds or not, so none the stream delivered is lost. Rejects when it fails (the stream,
 * which reloads on open, then drops and tries again).
 */
async function reload(): Promise<void> {
  const ws = state.workspaceId;
  if (!ws || !state.token) return;
  const load = (state.lastLoad += 1);
  const healthAsked = (state.lastHealth += 1);
  state.loading += 1;
  try {
    const [answer, workspace, vehicles, rejections] = await Promise.all([
      api.get<Health>(`/v1/workspaces/${ws}/health`),
      api.get<Workspace>(`/v1/workspaces/${ws}`),
      loadVehicles(api, ws),
      api.get<{ items: Rejection[] }>(`/v1/workspaces/${ws}/rejections?limit=50`),
    ]);
    // A later load, or another workspace, supersedes this one: its answer may predate what events told since.
    if (load !== state.lastLoad || ws !== state.workspaceId) return;
    learnServerClock(vehicles);
    readinessBook.targetPct = chargeTarget(workspace.policy.socThresholdsPct);
    state.vehicles = new Map(vehicles.map((v) => [v.id, v]));
    for (const vehicle of vehicles) readinessBook.track(vehicle);
    table.load(vehicles);
    (fleetMap ??= createFleetMap($('map'), await mapConfig, (id) => void selectVehicle(id))).load(vehicles);
    state.loaded = true;
    if (healthAsked === state.lastHealth) healthPanel.render(answer);
    rejectionsPanel.render(rejections.items);
    renderVehicles();
    panel.reload();
    void readinessBook
      .prime(api, ws, vehicles, (id) => {
        if (ws !== state.workspaceId) return false;
        table.refresh(id);
        return true;
      })
      .catch(() => undefined);
    $('refreshed').textContent = '';
  } catch (error) {
    if (error instanceof Unauthorized) signedOut();
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
  if (effect.kind === 'cutover') {
    settings.cutoverChanged();
    healthSoon();
    return;
  }
  if (effect.kind === 'connection') {
    healthPanel.refresh(effect.connectionId);
    healthSoon();
    return;
  }
  const vehicle = state.vehicles.get(effect.vehicleId);
  if (vehicle && effect.signals.includes('soc_pct')) readinessBook.track(vehicle);
  state.dirty.add(effect.vehicleId);
  if (effect.freshness) healthSoon();
  panel.refresh(effect.vehicleId, effect.signals);
  if (!state.renderQueued) {
    state.renderQueued = true;
    // One render per frame however many events a chunk of the stream held.
    window.requestAnimationFrame(() => {
      state.renderQueued = false;
      for (const id of state.dirty) {
        table.refresh(id);
        const changed = state.vehicles.get(id);
        if (changed) fleetMap?.refresh(changed);
      }
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
    const answer = await api.get<Health>(`/v1/workspaces/${ws}/health`);
    if (asked === state.lastHealth && ws === state.workspaceId) healthPanel.render(answer);
  } catch (error) {
    if (error instanceof Unauthorized) signedOut();
  }
}

function renderVehicles(): void {
  const shown = table.place({ ...state, selected: panel.selected });
  $('vehicles-empty').hidden = shown > 0;
  markVehicleControls(state);
}

function tickAges(): void {
  table.tick();
  healthPanel.tick();
  rejectionsPanel.tick();
}

async function selectVehicle(id: string): Promise<void> {
  const opened = panel.open(id);
  fleetMap?.select(id);
  renderVehicles();
  // In one column the panel is below the list: bring it into view.
  if (window.matchMedia('(max-width: 1200px)').matches) $('vehicle-panel').scrollIntoView({ block: 'start' });
  await opened;
}

function closePanel(): void {
  panel.close();
  fleetMap?.select(null);
  renderVehicles();
}

function wire(): void {
  $<HTMLFormElement>('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $<HTMLInputElement>('token').value.trim();
    if (token) void signIn(token);
  });
  $('signout').addEventListener('click', () => showSignin());
  for (const tab of document.querySelectorAll<HTMLElement>('[data-view]')) {
    tab.addEventListener('click', () => {
      const view = tab.dataset.view as View;
      if (view === 'overview') void showOverview();
      else if (state.workspaceId) showWorkspace(state.workspaceId, view);
    });
  }
  wireVehicleControls(state, renderVehicles);
  $('panel-close').addEventListener('click', closePanel);
}

function start(): void {
  wire();
  // A sign-in link (#key=...) signs in at once; the key leaves the address bar and the history right away.
  const fromLink = new URLSearchParams(window.location.hash.slice(1)).get('key');
  if (fromLink) window.history.replaceState(null, '', window.location.pathname);
  const token = fromLink ?? sessionStorage.getItem(tokenKey);
  if (token) void signIn(token);
  else showSignin();
}

start();
