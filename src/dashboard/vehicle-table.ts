/**
 * The vehicle table, kept row by row: each vehicle's row is built once, and afterwards only the cells whose text
 * changed are written, so an event costs its vehicle's row and filtering or sorting moves rows without rebuilding
 * them. Rows read the vehicle objects the dashboard holds, which events update in place.
 */
import type { Vehicle, VehicleStatus } from './api-types.ts';
import { ageSeconds, ago } from './clock.ts';
import { el, placeInOrder, setClass, setText } from './dom.ts';

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
  name: HTMLTableCellElement;
  badge: HTMLSpanElement;
  why: HTMLSpanElement;
  socBar: HTMLDivElement;
  socFill: HTMLDivElement;
  socText: HTMLSpanElement;
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
  const cell = () => el('td');
  const badge = el('span', { 'data-testid': 'vehicle-status' });
  const why = el('span', { class: 'why' });
  const socFill = el('div');
  const socBar = el('div', { class: 'bar' }, socFill);
  const socText = el('span');
  const row: Row = {
    vehicle,
    tr: el('tr', { 'data-vehicle': vehicle.id, 'data-testid': 'vehicle-row' }),
    name: cell(),
    badge,
    why,
    socBar,
    socFill,
    socText,
    charging: cell(),
    speed: cell(),
    location: cell(),
    observed: cell(),
    sync: cell(),
  };
  row.tr.append(row.name, el('td', {}, badge, why), el('td', {}, el('div', { class: 'soc' }, socBar, socText)), row.charging, row.speed, row.location, row.observed, row.sync);
  row.tr.addEventListener('click', () => onSelect(vehicle.id));
  return row;
}

function renderAges(row: Row): void {
  const v = row.vehicle;
  setText(row.observed, v.lastObservedAt ? `${ago(ageSeconds(v.lastObservedAt))} ago` : 'never');
  setText(row.sync, ago(ageSeconds(v.lastSyncedAt)));
}

function render(row: Row): void {
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
  row.socBar.hidden = typeof soc !== 'number';
  if (typeof soc === 'number') {
    setClass(row.socBar, `bar ${soc < 20 ? 'low' : soc < 40 ? 'mid' : ''}`);
    // Through the style object, which the content security policy allows.
    const width = `${Math.max(0, Math.min(100, soc))}%`;
    if (row.socFill.style.width !== width) row.socFill.style.width = width;
  }
  setText(row.socText, typeof soc === 'number' ? `${soc.toFixed(0)} %` : '–');

  const charging = v.signals.charging_state?.value;
  const plugged = v.signals.plugged_in?.value;
  const chargingText = [typeof charging === 'string' ? charging.replace('_', ' ') : null, plugged === true ? 'plugged in' : plugged === false ? 'unplugged' : null]
    .filter(Boolean)
    .join(', ');
  setText(row.charging, chargingText || '–');
  const speed = v.signals.speed_kph?.value;
  setText(row.speed, typeof speed === 'number' ? `${speed.toFixed(0)} km/h` : '–');
  const location = v.signals.location?.value as { lat?: unknown; lon?: unknown } | undefined;
  setText(row.location, typeof location?.lat === 'number' && typeof location.lon === 'number' ? `${location.lat.toFixed(4)}, ${location.lon.toFixed(4)}` : '–');
  renderAges(row);
}

export function createVehicleTable(body: HTMLElement, onSelect: (vehicleId: string) => void): VehicleTable {
  const rows = new Map<string, Row>();
  return {
    load(vehicles) {
      const seen = new Set<string>();
      for (const vehicle of vehicles) {
        seen.add(vehicle.id);
        const row = rows.get(vehicle.id) ?? buildRow(vehicle, onSelect);
        row.vehicle = vehicle;
        rows.set(vehicle.id, row);
        render(row);
      }
      for (const [id, row] of rows) {
        if (seen.has(id)) continue;
        row.tr.remove();
        rows.delete(id);
      }
    },
    refresh(vehicleId) {
      const row = rows.get(vehicleId);
      if (row) render(row);
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
