/**
 * What the migration panel draws (migration-panel.ts asks for it): of a parity report, the gate's verdict with each
 * reason on a line of its own, the summary, a row per signal, the worst vehicles and examples of each difference; of
 * the cutover's transitions, the recent ones. Every cell carries its column's name (`data-label`), so at phone width
 * each row is a card of labelled cells as in the other tables. Text nodes only: nothing the API says is parsed as HTML.
 */
import type { CutoverTransition, ParityDifference, ParityReport } from './api-types.ts';
import { ago, since } from './clock.ts';
import { $, el } from './dom.ts';

/** The transitions listed: the migration's recent history, not its whole record. */
const transitionsShown = 10;

const pct = (value: number | null) => (value === null ? '–' : `${value} %`);
const lag = (seconds: number | null) => (seconds === null ? '–' : seconds < 120 ? `${seconds} s` : ago(seconds));
const when = (iso: string) => new Date(iso).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const valueText = (value: unknown) => (value === undefined ? '–' : typeof value === 'string' ? value : JSON.stringify(value));

const signalColumns = ['Signal', 'Coverage', 'Agreement', 'Legacy / core readings', 'Core lacks', 'Legacy lacks'];
const worstColumns = ['Vehicle', 'Worst signal', 'Coverage', 'Agreement'];
const differenceColumns = ['Vehicle', 'Signal', 'Difference', 'Observed', 'Core', 'Legacy'];

/** A row of `columns`' cells, each carrying its column's name. */
function row(attrs: Record<string, string>, columns: readonly string[], values: readonly (Node | string)[]): HTMLTableRowElement {
  return el('tr', attrs, ...values.map((value, i) => el('td', { 'data-label': columns[i]! }, value)));
}

/** A titled table whose rows go in the body `id`, with the line `id`-empty says when it has none. */
function tableSection(id: string, title: string, columns: readonly string[], empty: string): HTMLElement {
  return el(
    'section',
    { 'aria-labelledby': `${id}-heading` },
    el('h3', { id: `${id}-heading` }, title),
    el(
      'div',
      { class: 'table-wrap', 'data-testid': `${id}-wrap` },
      el('table', { class: 'cards-narrow' }, el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col' }, c)))), el('tbody', { id })),
      el('p', { id: `${id}-empty`, class: 'muted', hidden: '' }, empty),
    ),
  );
}

/** The panel's tables, once: the renderers below fill their bodies. */
export function buildParityTables(): void {
  $('parity-tables').replaceChildren(
    el(
      'div',
      { class: 'parity-grid' },
      tableSection('parity-signals', 'By signal', signalColumns, 'No reading of either poller in this window.'),
      tableSection('parity-worst', 'Worst vehicles', worstColumns, 'No vehicle falls short: both pollers agree on every one.'),
    ),
    tableSection('parity-differences', 'Differences, with examples', differenceColumns, 'No example of a difference in this window.'),
  );
}

function fillTable(id: string, rows: readonly HTMLTableRowElement[]): void {
  $(id).replaceChildren(...rows);
  $(`${id}-empty`).hidden = rows.length > 0;
}

function time(iso: string): HTMLTimeElement {
  return el('time', { datetime: iso, title: iso }, when(iso));
}

function figure(label: string, value: string, detail: string, testId: string): HTMLDivElement {
  return el('div', { class: 'stat', 'data-testid': testId }, el('dt', {}, label), el('dd', {}, el('span', { class: 'stat-value' }, value), el('span', { class: 'muted small' }, detail)));
}

export function renderWindow(report: ParityReport, policyWindowHours: number | null): void {
  const { hours, from, to } = report.window;
  const judged = policyWindowHours !== null && policyWindowHours !== hours ? ` The cutover to core is judged over the policy's ${policyWindowHours} h.` : '';
  $('migration-window').textContent = `Over the last ${hours} h, from ${when(from)} to ${when(to)}.${judged}`;
}

export function renderGate(report: ParityReport): void {
  const { gate } = report;
  const verdict = el(
    'p',
    { class: 'verdict' },
    el('span', { class: `badge ${gate.met ? 'ok' : 'failing'}`, 'data-testid': 'parity-verdict' }, gate.met ? 'gate met' : 'gate not met'),
    gate.met
      ? `coverage and agreement reach ${gate.minCoveragePct} % and ${gate.minAgreementPct} % and core is no further behind than the legacy poller: core may take over.`
      : `core may take over when coverage reaches ${gate.minCoveragePct} %, agreement ${gate.minAgreementPct} % and core is no further behind than the legacy poller. Short of it:`,
  );
  const reasons = el('ul', { class: 'parity-reasons' }, ...gate.reasons.map((reason) => el('li', { 'data-testid': 'parity-reason' }, reason)));
  $('migration-gate').replaceChildren(verdict, ...(gate.reasons.length > 0 ? [reasons] : []));
}

export function renderSummary(report: ParityReport): void {
  const s = report.summary;
  const side = (name: string, f: ParityReport['summary']['freshness']['core'], testId: string) =>
    figure(name, `mean lag ${lag(f.meanLagSeconds)}`, f.newestObservedAt === null ? 'no reading' : `newest observed ${since(f.newestObservedAt)}`, testId);
  $('migration-summary').replaceChildren(
    figure('Coverage', pct(s.coveragePct), `of the legacy poller's ${s.legacyReadings} readings core also has (gate ${report.gate.minCoveragePct} %)`, 'parity-coverage'),
    figure('Agreement', pct(s.agreementPct), `of the ${s.pairs} readings both have agree (gate ${report.gate.minAgreementPct} %)`, 'parity-agreement'),
    figure('Core lacks', String(s.missingInCore), `of the legacy poller's ${s.legacyReadings} readings`, 'parity-missing-in-core'),
    figure('Legacy lacks', String(s.missingInLegacy), `of core's ${s.coreReadings} readings`, 'parity-missing-in-legacy'),
    side('Legacy poller', s.freshness.legacy, 'parity-legacy-freshness'),
    side("Core's polling", s.freshness.core, 'parity-core-freshness'),
  );
}

export function renderSignals(report: ParityReport): void {
  const rows = report.bySignal.map((f) =>
    row({ 'data-testid': 'parity-signal', 'data-signal': f.signal }, signalColumns, [
      el('code', {}, f.signal),
      pct(f.coveragePct),
      pct(f.agreementPct),
      `${f.legacyReadings} / ${f.coreReadings}`,
      String(f.missingInCore),
      String(f.missingInLegacy),
    ]),
  );
  fillTable('parity-signals', rows);
}

/** The worst vehicles; a click (or Enter on its name) opens the vehicle as the vehicle table does. */
export function renderWorst(report: ParityReport, onOpen: (vehicleId: string) => void): void {
  const rows = report.worstVehicles.map((v) => {
    const tr = row({ 'data-testid': 'parity-worst-vehicle', 'data-vehicle': v.vehicleId }, worstColumns, [
      el('button', { type: 'button', class: 'link name', title: 'Open this vehicle' }, v.vehicleName || v.vehicleId),
      el('code', {}, v.worstSignal),
      pct(v.coveragePct),
      pct(v.agreementPct),
    ]);
    tr.addEventListener('click', () => onOpen(v.vehicleId));
    return tr;
  });
  fillTable('parity-worst', rows);
}

const kinds: Record<ParityDifference['kind'], string> = {
  disagreement: 'values differ',
  missing_in_core: 'core lacks it',
  missing_in_legacy: 'legacy lacks it',
};

/** A side's value in a difference; "lacks it" for the side a gap is in. */
function sideValue(d: ParityDifference, side: 'core' | 'legacy'): Node | string {
  const lacking = (side === 'core' && d.kind === 'missing_in_core') || (side === 'legacy' && d.kind === 'missing_in_legacy');
  return lacking ? el('span', { class: 'lacks' }, 'lacks it') : valueText(d[side]);
}

export function renderDifferences(report: ParityReport): void {
  const rows = report.differences.map((d) =>
    row({ 'data-testid': 'parity-difference', 'data-kind': d.kind, 'data-vehicle': d.vehicleId }, differenceColumns, [
      d.vehicleName || d.vehicleId,
      el('code', {}, d.signal),
      el('span', { class: `difference ${d.kind}` }, kinds[d.kind]),
      time(d.observedAt),
      sideValue(d, 'core'),
      sideValue(d, 'legacy'),
    ]),
  );
  fillTable('parity-differences', rows);
}

export function renderTransitions(items: readonly CutoverTransition[]): void {
  const list = items.slice(0, transitionsShown).map((t) =>
    el(
      'li',
      { 'data-testid': 'cutover-transition', 'data-forced': String(t.forced) },
      el('div', {}, el('span', { class: 'name' }, `${t.from} → ${t.to}`), ' ', t.forced ? el('span', { class: 'badge failing' }, 'forced') : null, ' ', time(t.at)),
      el('div', { class: 'detail' }, `by ${t.actor}`, t.reason ? ` — “${t.reason}”` : ' — no reason given'),
    ),
  );
  $('cutover-transitions').replaceChildren(...(list.length > 0 ? list : [el('li', { class: 'muted' }, 'No change recorded yet.')]));
}
