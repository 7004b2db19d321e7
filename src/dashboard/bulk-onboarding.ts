/**
 * Onboarding many devices at once, for the admin (docs/API.md, Discovered devices): every waiting device of a
 * connection whose external id starts with a prefix bound to a new vehicle each (`.../discovered-devices/bind-matching`,
 * previewed first with `dryRun`), and a fleet list imported from a CSV table (`.../vehicles:import`, all rows or
 * none; a refusal lists each row's problem as the API words it).
 */
import type { Connection } from './api-types.ts';
import { ApiProblem, type Api } from './api.ts';
import { el } from './dom.ts';
import { button, field, formMessage, input, onSubmit, textArea } from './forms.ts';

export interface BulkOnboardingDeps {
  api: Api;
  workspaceId(): string | null;
  admin(): boolean;
  /** Vehicles were made: the lists must show them. */
  onBound(): void;
  onUnauthorized(): void;
}

export interface BulkOnboarding {
  /** Draws the forms for the workspace's connections (hidden for a workspace key: these are the admin's). */
  render(connections: readonly Connection[]): void;
}

interface BindMatchingAnswer {
  bound: { externalId: string; vehicleId: string | null }[];
  skipped: { externalId: string; reason: string }[];
  remaining: number;
}

interface ImportRowError {
  row: number;
  field: string | null;
  reason: string;
  detail?: string;
}

/** The first few of a list, one line each, and how many more. */
function listOf(lines: readonly string[], testId: string, shown = 20): HTMLUListElement {
  const items = lines.slice(0, shown).map((line) => el('li', {}, line));
  if (lines.length > shown) items.push(el('li', { class: 'muted' }, `and ${lines.length - shown} more`));
  return el('ul', { class: 'bulk-result', 'data-testid': testId }, ...items);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function createBulkOnboarding(deps: BulkOnboardingDeps): BulkOnboarding {
  const path = (suffix: string) => `/v1/workspaces/${deps.workspaceId()}${suffix}`;

  function matchingForm(connections: readonly Connection[]): HTMLFormElement {
    const connection = el('select', { name: 'connectionId', required: '' }, ...connections.map((c) => el('option', { value: c.id }, `${c.label || c.provider} (${c.provider})`)));
    const prefix = input({ name: 'prefix', maxlength: '256', placeholder: 'e.g. BUS-' });
    const template = input({ name: 'nameTemplate', maxlength: '200', value: '{externalId}' });
    const preview = button('Preview', { 'data-testid': 'bind-matching-preview' });
    const message = formMessage('bind-matching-message');
    const result = el('div', {});
    const form = el(
      'form',
      { class: 'settings-form', 'data-testid': 'bind-matching-form', autocomplete: 'off' },
      el('h3', {}, 'Bind all that match'),
      field('Connection', connection),
      field('External id starts with', prefix, 'Empty: every waiting device of the connection.'),
      field('Vehicle name', template, '{externalId} and {provider} are replaced by the device’s.'),
      el('div', { class: 'form-actions' }, preview, el('button', { type: 'submit', 'data-testid': 'bind-matching-submit' }, 'Bind all')),
      message.node,
      result,
    );
    const run = async (dryRun: boolean): Promise<string> => {
      const body = { connectionId: connection.value, ...(prefix.value ? { externalIdPrefix: prefix.value } : {}), nameTemplate: template.value || '{externalId}', dryRun };
      const answer = await deps.api.send<BindMatchingAnswer>('POST', path('/discovered-devices/bind-matching'), body);
      const lines = [
        ...answer.bound.map((b) => `${b.externalId}: ${dryRun ? 'would get a new vehicle' : 'bound to a new vehicle'}`),
        ...answer.skipped.map((s) => `${s.externalId}: skipped, ${s.reason}`),
      ];
      result.replaceChildren(listOf(lines, dryRun ? 'bind-matching-preview-list' : 'bind-matching-list'));
      if (!dryRun && answer.bound.length > 0) deps.onBound();
      const more = answer.remaining > 0 ? `; ${answer.remaining} more match: run it again for them` : '';
      return dryRun
        ? `${plural(answer.bound.length, 'device')} would be bound, ${answer.skipped.length} skipped${more}.`
        : `${plural(answer.bound.length, 'device')} bound to new vehicles, ${answer.skipped.length} skipped${more}; each is backfilled.`;
    };
    onSubmit(form, message, deps.onUnauthorized, () => run(false));
    preview.addEventListener('click', () => {
      message.clear();
      run(true).then(
        (text) => message.say(text),
        (error: unknown) => message.fail((error as Error).message),
      );
    });
    return form;
  }

  function importForm(): HTMLFormElement {
    const file = el('input', { type: 'file', name: 'file', accept: '.csv,text/csv' });
    const table = textArea({ name: 'csv', rows: '5', placeholder: 'name,vin,connection,external_id\nBus 12,…,<connection id>,<external id>' });
    const message = formMessage('import-message');
    const result = el('div', {});
    const form = el(
      'form',
      { class: 'settings-form', 'data-testid': 'import-form', autocomplete: 'off' },
      el('h3', {}, 'Import a fleet list'),
      field('CSV file', file, 'Header name,vin,connection,external_id; one row per vehicle. Every row is imported, or none.'),
      field('Or paste the table', table),
      el('div', { class: 'form-actions' }, el('button', { type: 'submit', 'data-testid': 'import-submit' }, 'Import')),
      message.node,
      result,
    );
    onSubmit(form, message, deps.onUnauthorized, async () => {
      result.replaceChildren();
      const chosen = file.files?.[0];
      const text = chosen ? await chosen.text() : table.value;
      if (text.trim() === '') throw new Error('choose a CSV file or paste the table');
      try {
        const answer = await deps.api.sendText<{ created: { row: number; vehicleId: string }[] }>(path('/vehicles:import'), 'text/csv', text);
        deps.onBound();
        file.value = '';
        table.value = '';
        return `${plural(answer.created.length, 'vehicle')} imported; their devices are bound and backfilled.`;
      } catch (error) {
        const errors = error instanceof ApiProblem ? (error.problem.errors as ImportRowError[] | undefined) : undefined;
        if (errors) result.replaceChildren(listOf(errors.map((e) => `row ${e.row}${e.field ? `, ${e.field}` : ''}: ${e.detail ?? e.reason}`), 'import-errors'));
        throw error;
      }
    });
    return form;
  }

  return {
    render(connections) {
      const panel = document.getElementById('bulk-onboarding')!;
      panel.hidden = !deps.admin();
      if (panel.hidden) return;
      const forms = document.getElementById('bulk-forms')!;
      if (connections.length === 0) {
        forms.replaceChildren(el('p', { class: 'muted' }, 'Add a connection first: its devices are what gets bound.'));
        return;
      }
      forms.replaceChildren(matchingForm(connections), importForm());
    },
  };
}
