/**
 * Onboarding: the devices the workspace's providers report that nobody has bound (`GET .../discovered-devices`),
 * each with what it sends, to bind to a new vehicle or an existing one, or to ignore (then dropped before ingest);
 * the ignored ones, to take back; many at once (bulk-onboarding.ts); and the workspace's connections
 * (connection-forms.ts: listed with their options, added, changed and removed by the admin). While no device waits, the list is asked again every few seconds, so a
 * first poll's devices appear without a reload; once rows are shown only "Refresh" reads it again, so a name being
 * typed into a bind form is never wiped.
 */
import type { Connection, DiscoveredDevice, Vehicle } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { since } from './clock.ts';
import { createBulkOnboarding } from './bulk-onboarding.ts';
import { createConnectionPanel } from './connection-forms.ts';
import { $, el, setText } from './dom.ts';

/** How often an empty waiting list is asked again while the page is shown. */
const emptyRefreshMs = 5000;

export interface OnboardingDeps {
  api: Api;
  workspaceId(): string | null;
  admin(): boolean;
  vehicles(): readonly Vehicle[];
  /** A device was bound: the vehicle list must show the vehicle. */
  onBound(vehicleId: string): void;
  onUnauthorized(): void;
}

export interface Onboarding {
  load(): Promise<void>;
  /** The page is left, or another workspace opened: no more asking, and the add form closes. */
  leave(): void;
}

function sampleText(sample: DiscoveredDevice['sample']): string {
  const parts = Object.entries(sample)
    .filter((entry): entry is [string, { value: unknown; observedAt: string }] => entry[1] !== undefined)
    .slice(0, 6)
    .map(([signal, { value }]) => {
      const shown = typeof value === 'object' && value !== null && 'lat' in value && 'lon' in value ? `${Number((value as { lat: unknown }).lat).toFixed(4)}, ${Number((value as { lon: unknown }).lon).toFixed(4)}` : JSON.stringify(value);
      return `${signal} ${shown.length > 40 ? `${shown.slice(0, 39)}…` : shown}`;
    });
  return parts.length === 0 ? 'nothing yet' : parts.join(' · ');
}

export function createOnboarding(deps: OnboardingDeps): Onboarding {
  let showing: 'pending' | 'ignored' = 'pending';
  let connections: Connection[] = [];
  const path = (suffix: string) => `/v1/workspaces/${deps.workspaceId()}${suffix}`;
  const message = $('onboarding-message');
  let timer: number | undefined;
  const panel = createConnectionPanel({
    api: deps.api,
    workspaceId: deps.workspaceId,
    admin: deps.admin,
    onChanged: () => loadConnections(),
    onUnauthorized: deps.onUnauthorized,
  });
  const bulk = createBulkOnboarding({
    api: deps.api,
    workspaceId: deps.workspaceId,
    admin: deps.admin,
    onBound: () => {
      deps.onBound('');
      void loadDevices().catch(failed);
    },
    onUnauthorized: deps.onUnauthorized,
  });

  function say(text: string, isError = false): void {
    setText(message, text);
    message.className = isError ? 'error' : 'muted';
  }

  async function act(device: DiscoveredDevice, action: () => Promise<string>): Promise<void> {
    try {
      const done = await action();
      // The list first, then the word: once it says done, the list already shows it.
      await loadDevices();
      say(done);
    } catch (error) {
      if (error instanceof Unauthorized) deps.onUnauthorized();
      else say(`${device.externalId}: ${(error as Error).message}`, true);
    }
  }

  function bindForm(device: DiscoveredDevice): HTMLFormElement {
    const name = el('input', { name: 'name', 'aria-label': 'New vehicle name', value: device.externalId, required: '', maxlength: '200' });
    const vin = el('input', { name: 'vin', 'aria-label': 'VIN (optional)', placeholder: 'VIN (optional)', maxlength: '32' });
    const existing = el('select', { name: 'vehicleId', 'aria-label': 'Or an existing vehicle' }, el('option', { value: '' }, 'a new vehicle'), ...deps.vehicles().map((v) => el('option', { value: v.id }, v.name)));
    const form = el('form', { class: 'bind-form', 'data-testid': 'bind-form' }, el('label', {}, 'Bind to ', existing), name, vin, el('button', { type: 'submit' }, 'Bind'));
    existing.addEventListener('change', () => {
      name.disabled = existing.value !== '';
      vin.disabled = existing.value !== '';
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const target = existing.value ? { vehicleId: existing.value } : { vehicle: { name: name.value.trim(), ...(vin.value.trim() ? { vin: vin.value.trim() } : {}) } };
      void act(device, async () => {
        const answer = await deps.api.send<{ vehicleId: string; created: boolean }>('POST', path('/discovered-devices/bind'), { connectionId: device.connectionId, externalId: device.externalId, ...target });
        deps.onBound(answer.vehicleId);
        return `${device.externalId} bound to ${answer.created ? 'a new vehicle' : 'its vehicle'}; its readings show from now on.`;
      });
    });
    return form;
  }

  function deviceRow(device: DiscoveredDevice): HTMLTableRowElement {
    const connection = connections.find((c) => c.id === device.connectionId);
    const actions = el('td', { 'data-label': 'Action', class: 'actions' });
    if (device.status === 'pending') {
      const ignore = el('button', { type: 'button', class: 'link', 'data-testid': 'ignore-device' }, 'Ignore');
      ignore.addEventListener('click', () =>
        void act(device, async () => {
          await deps.api.send('POST', path('/discovered-devices/ignore'), { connectionId: device.connectionId, externalId: device.externalId });
          return `${device.externalId} ignored: its readings are dropped before ingest.`;
        }),
      );
      actions.append(bindForm(device), ignore);
    } else {
      const unignore = el('button', { type: 'button', class: 'link' }, 'Take back');
      unignore.addEventListener('click', () =>
        void act(device, async () => {
          await deps.api.send('POST', path('/discovered-devices/unignore'), { connectionId: device.connectionId, externalId: device.externalId });
          return `${device.externalId} is pending again.`;
        }),
      );
      actions.append(unignore);
    }
    return el(
      'tr',
      { 'data-testid': 'discovered-device', 'data-external-id': device.externalId },
      el('td', { 'data-label': 'Device' }, el('span', { class: 'name' }, device.externalId), el('span', { class: 'row-detail' }, `${connection?.label ?? device.provider} · ${device.readingCount} readings`)),
      el('td', { 'data-label': 'Connection' }, `${connection?.label ?? device.connectionId} (${device.provider})`),
      el('td', { 'data-label': 'Seen', class: 'low' }, `first ${since(device.firstSeenAt)}, last ${since(device.lastSeenAt)}`),
      el('td', { 'data-label': 'Readings', class: 'low' }, String(device.readingCount)),
      el('td', { 'data-label': 'Sends', class: 'sample' }, sampleText(device.sample)),
      actions,
    );
  }

  async function loadConnections(): Promise<void> {
    connections = (await deps.api.get<{ items: Connection[] }>(path('/connections'))).items;
    panel.render(connections);
    bulk.render(connections);
  }

  async function loadDevices(): Promise<void> {
    const ws = deps.workspaceId();
    const devices = await deps.api.get<{ items: DiscoveredDevice[]; nextCursor: string | null }>(path(`/discovered-devices?status=${showing}&limit=200`));
    if (ws !== deps.workspaceId()) return;
    $('discovered-rows').replaceChildren(...devices.items.map(deviceRow));
    setText($('discovered-empty'), showing === 'pending' ? 'No unbound device is reporting yet: devices appear here after a poll, or once a stream is up.' : 'No device is ignored.');
    $('discovered-empty').hidden = devices.items.length > 0;
    setText($('discovered-more'), devices.nextCursor ? 'More devices wait beyond these 200: bind or ignore these first, or bind them all at once below.' : '');
  }

  function failed(error: unknown): void {
    if (error instanceof Unauthorized) deps.onUnauthorized();
    else say(`discovered devices failed: ${(error as Error).message}`, true);
  }

  async function load(): Promise<void> {
    if (!deps.workspaceId()) return;
    window.clearInterval(timer);
    timer = window.setInterval(() => {
      if ($('discovered-rows').childElementCount === 0) void loadDevices().catch(() => undefined);
    }, emptyRefreshMs);
    try {
      // Connections first: a device row names its connection.
      await loadConnections();
      await loadDevices();
    } catch (error) {
      failed(error);
    }
  }

  $('discovered-refresh').addEventListener('click', () => void loadDevices().catch(failed));

  for (const chip of document.querySelectorAll<HTMLElement>('[data-discovered]')) {
    chip.addEventListener('click', () => {
      showing = chip.dataset.discovered as 'pending' | 'ignored';
      for (const other of document.querySelectorAll<HTMLElement>('[data-discovered]')) other.setAttribute('aria-pressed', String(other === chip));
      void loadDevices().catch(failed);
    });
  }

  return {
    load,
    leave() {
      window.clearInterval(timer);
      panel.reset();
    },
  };
}
