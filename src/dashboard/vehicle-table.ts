/**
 * The vehicle table, kept row by row: each vehicle's row is built once, and afterwards only the cells whose text
 * changed are written, so an event costs its vehicle's row and filtering or sorting moves rows without rebuilding
 * them. Rows read the vehicle objects the dashboard holds, which events update in place.
 *
 * Every cell carries its column's name (`data-label`) and the low-priority ones (speed, location, last observed) the
 * class `low`: where the table has little room the stylesheet hides those columns and shows the same facts in the
 * row's detail line under the name, and at phone width each row becomes a card of labelled cells.
 */
import type { Vehicle, VehicleStatus } from './api-types.ts';
import { ageSeconds, ago } from './clock.ts';
import { el, placeInOrder, setClass, setText } from './dom.ts';
import type { Readiness } from './readiness.ts';

/** A vehicle's charge readiness and the target it is judged against. */
export type ReadinessOf = (vehicle: Vehicle) => { readiness: Readiness; targetPct: number };

export interface TableOrder {
  filter: VehicleStatus | 'all';
  search: string;
  sort: { key: string; dir: 1 | -1 };
  selected: string | null;
}

export interface VehicleTable {
  /** After a full load: rows for new vehicles, every row brought up to date, rows of vehicles gone dropped. */
  load(vehicles: readonly Vehicle[]): void;
  /** Brings one vehicle's cells up to date. */
  refresh(vehicleId: string): void;
  /** Ages move with the clock rather than with events. */
  tick(): void;
  /** Filters and sorts the rows into the table; answers how many are shown. */
  place(order: TableOrder): number;
}

interface Row {
  vehicle: Vehicle;
  tr: HTMLTableRowElement;
  name: HTMLSpanElement;
  detail: HTMLSpanElement;
  badge: HTMLSpanElement;
  why: HTMLSpanElement;
  socBar: HTMLDivElement;
  socFill: HTMLDivElement;
  socMark: HTMLDivElement;
  socText: HTMLSpanElement;
  estimate: HTMLSpanElement;
  charging: HTMLTableCellElement;
  speed: HTMLTableCellElement;
  location: HTMLTableCellElement;
  observed: HTMLTableCellElement;
  sync: HTMLTableCellElement;
}

function sortValue(v: Vehicle, key: string): number | string {
  const n = (signal: string) => (typeof v.signals[signal]?.value === 'number' ? (v.signals[signal]!.value as number) : -1);
  // Newest first as ages ascend: a time sorts the same as its age, and does not move as the clock does.
  const newest = (iso: string | null) => (iso === null ? Number.MAX_SAFE_INTEGER : -Date.parse(iso));
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
      return newest(v.lastObservedAt);
    case 'sync':
      return newest(v.lastSyncedAt);
    default:
      return v.name.toLowerCase();
  }
}

function buildRow(vehicle: Vehicle, onSelect: (vehicleId: string) => void): Row {
  const cell = (label: string, low = false) => el('td', { 'data-label': label, ...(low ? { class: 'low' } : {}) });
  const badge = el('span', { 'data-testid': 'vehicle-status' });
  const why = el('span', { class: 'why' });
  const socFill = el('div', { class: 'fill' });
  const socMark = el('div', { class: 'mark' });
  const socBar = el('div', { class: 'bar' }, socFill, socMark);
  const socText = el('span');
  const estimate = el('span', { class: 'estimate', 'data-testid': 'readiness' });
  const name = el('span', { class: 'name' });
  const detail = el('span', { class: 'row-detail' });
  const row: Row = {
    vehicle,
    tr: el('tr', { 'data-vehicle': vehicle.id, 'data-testid': 'vehicle-row' }),
    name,
    detail,
    badge,
    why,
    socBar,
    socFill,
    socMark,
    socText,
    estimate,
    charging: cell('Charging'),
    speed: cell('Speed', true),
    location: cell('Location', true),
    observed: cell('Last observed', true),
    sync: cell('Sync age'),
  };
  const nameCell = cell('Vehicle');
  nameCell.append(name, detail);
  const statusCell = cell('Status');
  statusCell.append(badge, why);
  const socCell = cell('Charge readiness');
  socCell.append(el('div', { class: 'soc' }, socBar, socText), estimate);
  row.tr.append(nameCell, statusCell, socCell, row.charging, row.speed, row.location, row.observed, row.sync);
  row.tr.addEventListener('click', () => onSelect(vehicle.id));
  return row;
}

function speedText(v: Vehicle): string {
  const speed = v.signals.speed_kph?.value;
  return typeof speed === 'number' ? `${speed.toFixed(0)} km/h` : '–';
}

function locationText(v: Vehicle): string {
  const location = v.signals.location?.value as { lat?: unknown; lon?: unknown } | undefined;
  return typeof location?.lat === 'number' && typeof location.lon === 'number' ? `${location.lat.toFixed(4)}, ${location.lon.toFixed(4)}` : '–';
}

function renderAges(row: Row): void {
  const v = row.vehicle;
  const observed = v.lastObservedAt ? `${ago(ageSeconds(v.lastObservedAt))} ago` : 'never';
  setText(row.observed, observed);
  setText(row.sync, ago(ageSeconds(v.lastSyncedAt)));
  setText(row.detail, `${speedText(v)} · ${locationText(v)} · observed ${observed}`);
}

function render(row: Row, readinessOf: ReadinessOf): void {
  const v = row.vehicle;
  setText(row.name, v.name);
  const status = v.freshness.status;
  setText(row.badge, status);
  setClass(row.badge, `badge ${status}`);
  const reason = v.freshness.reason;
  row.why.hidden = reason === null;
  setText(row.why, reason?.detail ?? '');
  if (row.why.title !== (reason?.detail ?? '')) row.why.title = reason?.detail ?? '';

  const soc = v.signals.soc_pct?.value;
  const { readiness, targetPct } = readinessOf(v);
  row.socBar.hidden = typeof soc !== 'number';
  if (typeof soc === 'number') {
    setClass(row.socBar, `bar ${soc < 20 ? 'low' : soc < targetPct ? 'mid' : ''}`);
    // Through the style object, which the content security policy allows.
    const width = `${Math.max(0, Math.min(100, soc))}%`;
    if (row.socFill.style.width !== width) row.socFill.style.width = width;
    const mark = `${targetPct}%`;
    if (row.socMark.style.left !== mark) row.socMark.style.left = mark;
  }
  setText(row.socText, typeof soc === 'number' ? `${soc.toFixed(0)} / ${targetPct} %` : '–');
  setText(row.estimate, readiness.state === 'unknown' ? '' : readiness.text);
  row.estimate.dataset.state = readiness.state;

  const charging = v.signals.charging_state?.value;
  const plugged = v.signals.plugged_in?.value;
  const power = v.signals.charge_power_kw?.value;
  const chargingText = [
    typeof charging === 'string' ? charging.replace('_', ' ') : null,
    charging === 'charging' && typeof power === 'number' ? `${power.toFixed(1)} kW` : null,
    plugged === true ? 'plugged in' : plugged === false ? 'unplugged' : null,
  ]
    .filter(Boolean)
    .join(', ');
  setText(row.charging, chargingText || '–');
  setText(row.speed, speedText(v));
  setText(row.location, locationText(v));
  renderAges(row);
}

export function createVehicleTable(body: HTMLElement, onSelect: (vehicleId: string) => void, readinessOf: ReadinessOf): VehicleTable {
  const rows = new Map<string, Row>();
  return {
    load(vehicles) {
      const seen = new Set<string>();
      for (const vehicle of vehicles) {
        seen.add(vehicle.id);
        const row = rows.get(vehicle.id) ?? buildRow(vehicle, onSelect);
        row.vehicle = vehicle;
        rows.set(vehicle.id, row);
        render(row, readinessOf);
      }
      for (const [id, row] of rows) {
        if (seen.has(id)) continue;
        row.tr.remove();
        rows.delete(id);
      }
    },
    refresh(vehicleId) {
      const row = rows.get(vehicleId);
      if (row) render(row, readinessOf);
    },
    tick() {
      for (const row of rows.values()) renderAges(row);
    },
    place(order) {
      const search = order.search.toLowerCase();
      const shown = [...rows.values()]
        .filter(({ vehicle: v }) => order.filter === 'all' || v.freshness.status === order.filter)
        .filter(({ vehicle: v }) => !search || v.name.toLowerCase().includes(search) || (v.vin ?? '').toLowerCase().includes(search))
        .sort((a, b) => {
          const x = sortValue(a.vehicle, order.sort.key);
          const y = sortValue(b.vehicle, order.sort.key);
          return (x < y ? -1 : x > y ? 1 : 0) * order.sort.dir || a.vehicle.name.localeCompare(b.vehicle.name);
        });
      for (const row of rows.values()) row.tr.classList.toggle('selected', row.vehicle.id === order.selected);
      placeInOrder(body, shown.map((row) => row.tr));
      return shown.length;
    },
  };
}
