/**
 * The vehicle list's controls: the status filter (chips and the summary's counts), the search field and the
 * sortable headers. They change the view's state and ask for a render; `mark` shows the state on them.
 */
import type { VehicleStatus } from './api-types.ts';
import { $ } from './dom.ts';

export interface VehicleListState {
  filter: VehicleStatus | 'all';
  search: string;
  sort: { key: string; dir: 1 | -1 };
}

export function wireVehicleControls(state: VehicleListState, render: () => void): void {
  for (const chip of document.querySelectorAll<HTMLElement>('[data-filter], .count[data-status]')) {
    chip.addEventListener('click', () => {
      const wanted = (chip.dataset.filter ?? chip.dataset.status) as VehicleStatus | 'all';
      state.filter = state.filter === wanted && chip.dataset.status ? 'all' : wanted;
      render();
    });
  }
  $<HTMLInputElement>('search').addEventListener('input', (event) => {
    state.search = (event.target as HTMLInputElement).value;
    render();
  });
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    th.addEventListener('click', () => {
      const key = th.dataset.sort!;
      state.sort = { key, dir: state.sort.key === key ? (state.sort.dir === 1 ? -1 : 1) : 1 };
      render();
    });
  }
}

export function markVehicleControls(state: VehicleListState): void {
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    if (th.dataset.sort === state.sort.key) th.setAttribute('aria-sort', state.sort.dir === 1 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  for (const chip of document.querySelectorAll<HTMLElement>('[data-filter]')) chip.setAttribute('aria-pressed', String(chip.dataset.filter === state.filter));
  for (const card of document.querySelectorAll<HTMLElement>('.count[data-status]')) card.setAttribute('aria-pressed', String(card.dataset.status === state.filter));
}
