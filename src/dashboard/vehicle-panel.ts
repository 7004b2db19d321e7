/**
 * The vehicle panel: charge readiness in full (SoC against the target, charging power, the estimate and what it
 * rests on) and the history chart for 24 h or 7 days, drawn from the downsampled history (5 min buckets for a day,
 * 1 h for a week) with the newest buckets listed first under it. Readings that arrive by event join the chart without
 * asking for the history again.
 */
import type { ChargingSession, HistoryBucket, Vehicle } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { addReading, chart, chartRanges, type ChartRange } from './chart.ts';
import { serverNow } from './clock.ts';
import { $, el, setText } from './dom.ts';
import { capacityFromSessions, type Readiness, type SocPoint } from './readiness.ts';
import { bucketPoints } from './readiness-book.ts';

export interface VehiclePanelDeps {
  api: Api;
  workspaceId(): string | null;
  vehicle(id: string): Vehicle | undefined;
  target(): number;
  readiness(vehicle: Vehicle): Readiness;
  /** Battery capacities learned from charging sessions, by vehicle: the table's estimates use them too. */
  capacities: Map<string, number>;
  /** SoC readings the history told (each bucket's last), for the readiness estimate's rate. */
  onHistory(vehicleId: string, points: readonly SocPoint[]): void;
  onUnauthorized(): void;
  /** After the panel learned something the table shows (a capacity). */
  onLearned(vehicleId: string): void;
}

export interface VehiclePanel {
  readonly selected: string | null;
  open(vehicleId: string): Promise<void>;
  close(): void;
  /** A vehicle's readings changed by event: its readiness, and the chart if it is the one shown. */
  refresh(vehicleId: string, signals: readonly string[]): void;
  /** After a full load: the shown vehicle's history again. */
  reload(): void;
}

interface Shown {
  vehicleId: string;
  range: ChartRange;
  soc: HistoryBucket[];
  speed: HistoryBucket[];
}

const time = (iso: string, range: ChartRange) =>
  new Date(iso).toLocaleString([], range === '24h' ? { hour: '2-digit', minute: '2-digit' } : { weekday: 'short', hour: '2-digit', minute: '2-digit' });

export function createVehiclePanel(deps: VehiclePanelDeps): VehiclePanel {
  let selected: string | null = null;
  let range: ChartRange = '24h';
  let shown: Shown | null = null;
  let asked = 0;

  async function buckets(vehicleId: string, signal: string, r: ChartRange): Promise<HistoryBucket[]> {
    const { spanMs, bucket } = chartRanges[r];
    const from = new Date(serverNow() - spanMs).toISOString();
    // Newest first, so the newest buckets are the ones an answer holds whatever its length.
    const answer = await deps.api.get<{ items: HistoryBucket[] }>(
      `/v1/workspaces/${deps.workspaceId()}/vehicles/${vehicleId}/history?signal=${signal}&bucket=${bucket}&from=${encodeURIComponent(from)}&order=desc&limit=2016`,
    );
    return answer.items;
  }

  function renderReadiness(vehicle: Vehicle): void {
    const soc = vehicle.signals.soc_pct?.value;
    const target = deps.target();
    const fill = $('panel-soc-fill');
    fill.style.width = `${typeof soc === 'number' ? Math.max(0, Math.min(100, soc)) : 0}%`;
    $('panel-target-mark').style.left = `${target}%`;
    setText($('panel-soc'), typeof soc === 'number' ? `${soc.toFixed(0)} % of a ${target} % target` : `no SoC reported; target ${target} %`);
    const power = vehicle.signals.charge_power_kw?.value;
    const charging = vehicle.signals.charging_state?.value;
    setText(
      $('panel-power'),
      charging === 'charging' ? `charging${typeof power === 'number' ? ` at ${power.toFixed(1)} kW` : ', power not reported'}` : typeof charging === 'string' ? charging.replace('_', ' ') : 'charging state not reported',
    );
    const capacity = deps.capacities.get(vehicle.id);
    const estimate = deps.readiness(vehicle);
    const estimateNode = $('panel-estimate');
    estimateNode.dataset.state = estimate.state;
    setText(estimateNode, estimate.text);
    setText($('panel-capacity'), capacity === undefined ? 'battery size not known (no charging session with its energy)' : `battery ≈ ${capacity.toFixed(0)} kWh, from its charging sessions`);
  }

  function renderChart(): void {
    if (!shown) return;
    $('chart').replaceChildren(chart(shown.soc, shown.speed, shown.range, serverNow(), deps.target()));
    const recent = shown.soc.slice(0, 6);
    $('recent-buckets').replaceChildren(
      ...(recent.length === 0
        ? [el('li', { class: 'muted' }, 'no state of charge in this range')]
        : recent.map((b) => el('li', { 'data-testid': 'recent-bucket' }, el('span', {}, time(b.bucketStart, shown!.range)), ` ${b.avg!.toFixed(0)} % (${b.min!.toFixed(0)}–${b.max!.toFixed(0)})`))),
    );
  }

  async function learnCapacity(vehicleId: string): Promise<void> {
    if (deps.capacities.has(vehicleId)) return;
    const answer = await deps.api.get<{ items: ChargingSession[] }>(`/v1/workspaces/${deps.workspaceId()}/vehicles/${vehicleId}/charging-sessions?limit=20`);
    const capacity = capacityFromSessions(answer.items);
    if (capacity === undefined) return;
    deps.capacities.set(vehicleId, capacity);
    deps.onLearned(vehicleId);
  }

  async function load(vehicleId: string): Promise<void> {
    const mine = (asked += 1);
    const r = range;
    const vehicle = deps.vehicle(vehicleId);
    setText($('panel-title'), vehicle ? vehicle.name : 'Vehicle');
    setText($('chart-title'), chartRanges[r].label);
    if (vehicle) renderReadiness(vehicle);
    for (const button of document.querySelectorAll<HTMLElement>('[data-range]')) button.setAttribute('aria-pressed', String(button.dataset.range === r));
    try {
      const [soc, speed] = await Promise.all([buckets(vehicleId, 'soc_pct', r), buckets(vehicleId, 'speed_kph', r), learnCapacity(vehicleId).catch(() => undefined)]);
      if (mine !== asked) return;
      shown = { vehicleId, range: r, soc, speed };
      deps.onHistory(vehicleId, bucketPoints(soc));
      renderChart();
      const now = deps.vehicle(vehicleId);
      if (now) renderReadiness(now);
    } catch (error) {
      if (error instanceof Unauthorized) deps.onUnauthorized();
      else if (mine === asked) $('chart').replaceChildren(el('p', { class: 'muted' }, `history failed: ${(error as Error).message}`));
    }
  }

  for (const button of document.querySelectorAll<HTMLElement>('[data-range]')) {
    button.addEventListener('click', () => {
      range = button.dataset.range as ChartRange;
      if (selected) void load(selected);
    });
  }

  return {
    get selected() {
      return selected;
    },
    async open(vehicleId) {
      selected = vehicleId;
      shown = null;
      $('vehicle-panel').hidden = false;
      await load(vehicleId);
    },
    close() {
      selected = null;
      shown = null;
      asked += 1;
      $('vehicle-panel').hidden = true;
    },
    refresh(vehicleId, signals) {
      if (vehicleId !== selected) return;
      const vehicle = deps.vehicle(vehicleId);
      if (!vehicle) return;
      renderReadiness(vehicle);
      if (!shown || shown.vehicleId !== vehicleId) return;
      let changed = false;
      for (const [signal, series] of [
        ['soc_pct', shown.soc],
        ['speed_kph', shown.speed],
      ] as const) {
        const reading = signals.includes(signal) ? vehicle.signals[signal] : undefined;
        if (reading && typeof reading.value === 'number') changed = addReading(series, signal, Date.parse(reading.observedAt), reading.value, shown.range, serverNow()) || changed;
      }
      if (changed) renderChart();
    },
    reload() {
      if (selected) void load(selected);
    },
  };
}
