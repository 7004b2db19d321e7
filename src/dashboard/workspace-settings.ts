/**
 * A workspace's settings page (admin): its name, its telematics policy (`PUT .../telematics-policy`, every field of
 * it, so nothing is reset to a default by omission), its cutover (which poller owns it) with the migration's parity
 * under it (migration-panel.ts), and its API keys (api-keys.ts). Each form is filled from the workspace as the API
 * answers it and says what the API answered: a cutover the gate refuses lists each of its reasons.
 */
import type { Workspace } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { createApiKeys } from './api-keys.ts';
import { $, el } from './dom.ts';
import { field, formMessage, input, onSubmit } from './forms.ts';
import { createMigrationPanel } from './migration-panel.ts';

export interface SettingsDeps {
  api: Api;
  workspaceId(): string | null;
  /** The workspace changed (renamed, policy, cutover): headings, the picker and the views must show it. */
  onChanged(workspace: Workspace): void;
  /** A vehicle of the migration's worst list was chosen: open it as the vehicle table does. */
  onOpenVehicle(vehicleId: string): void;
  onUnauthorized(): void;
}

export interface Settings {
  load(): Promise<void>;
  /** The workspace's cutover changed (its event): the migration's parity and transitions are asked again. */
  cutoverChanged(): void;
  /** The page is left: a key shown once goes from the page, and the migration panel stops asking. */
  leave(): void;
}

function numberInput(name: string, min: number, max: number): HTMLInputElement {
  return input({ name, type: 'number', min: String(min), max: String(max), step: '1', required: '', inputmode: 'numeric' });
}

/** "20, 80" -> [20, 80]; what is not a number is said, not sent. */
function thresholds(text: string): number[] {
  const parts = text.split(/[\s,;]+/).filter((part) => part !== '');
  const values = parts.map(Number);
  const wrong = parts.find((_, i) => !Number.isFinite(values[i]));
  if (wrong !== undefined) throw new Error(`SoC thresholds: "${wrong}" is not a number`);
  return values;
}

export function createSettings(deps: SettingsDeps): Settings {
  const path = (suffix = '') => `/v1/workspaces/${deps.workspaceId()}${suffix}`;
  const keys = createApiKeys({ api: deps.api, path, onUnauthorized: deps.onUnauthorized, root: $('settings-keys') });
  const migration = createMigrationPanel({ api: deps.api, workspaceId: deps.workspaceId, onOpenVehicle: deps.onOpenVehicle, onUnauthorized: deps.onUnauthorized });

  const name = input({ name: 'name', required: '', maxlength: '200' });
  const renameMessage = formMessage('rename-message');
  const renameForm = el('form', { class: 'settings-form', 'data-testid': 'rename-form' }, field('Name', name), el('div', { class: 'form-actions' }, el('button', { type: 'submit' }, 'Save name')), renameMessage.node);
  onSubmit(renameForm, renameMessage, deps.onUnauthorized, async () => {
    const workspace = await deps.api.send<Workspace>('PATCH', path(), { name: name.value.trim() });
    deps.onChanged(workspace);
    return `Renamed to ${workspace.name}.`;
  });

  const enabled = input({ name: 'enabled', type: 'checkbox' });
  const poll = numberInput('pollIntervalSeconds', 10, 86_400);
  const freshness = numberInput('freshnessThresholdSeconds', 10, 604_800);
  const silent = numberInput('silentAfterSeconds', 10, 31_536_000);
  const retention = numberInput('retentionDays', 1, 3650);
  const eventRetention = numberInput('eventRetentionDays', 1, 90);
  const soc = input({ name: 'socThresholdsPct', inputmode: 'decimal' });
  const gateWindow = numberInput('windowHours', 1, 168);
  const gateCoverage = input({ name: 'minCoveragePct', type: 'number', min: '0', max: '100', step: 'any', required: '', inputmode: 'decimal' });
  const gateAgreement = input({ name: 'minAgreementPct', type: 'number', min: '0', max: '100', step: 'any', required: '', inputmode: 'decimal' });
  const gateMatch = numberInput('matchSeconds', 0, 3600);
  const policyMessage = formMessage('policy-message');
  const policyForm = el(
    'form',
    { class: 'settings-form', 'data-testid': 'policy-form' },
    el('label', { class: 'check' }, enabled, ' Telematics enabled'),
    el('small', { class: 'hint' }, 'Off: not polled, its streams not handed out, its updates refused.'),
    field('Poll interval (seconds)', poll, 'How often core polls each poll connection.'),
    field('Freshness goal (seconds)', freshness, 'A vehicle its provider has not confirmed for longer is stale, with the cause.'),
    field('Silent after (seconds)', silent, 'How long a vehicle may report nothing new (parked, asleep) before it shows silent.'),
    field('History kept (days)', retention),
    field('Events kept for replay (days)', eventRetention),
    field('SoC thresholds (%)', soc, 'Comma separated; crossing one is an event, and the highest is the charge target.'),
    el(
      'fieldset',
      {},
      el('legend', {}, 'Cutover gate: from shadow to core only when parity holds'),
      field('Parity window (hours)', gateWindow),
      field('Coverage at least (%)', gateCoverage, "Of the legacy poller's readings, the share core's polling also has."),
      field('Agreement at least (%)', gateAgreement, 'Of the readings both have, the share whose values agree.'),
      field('Same reading within (seconds)', gateMatch),
    ),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit' }, 'Save policy')),
    policyMessage.node,
  );
  onSubmit(policyForm, policyMessage, deps.onUnauthorized, async () => {
    const workspace = await deps.api.send<Workspace>('PUT', path('/telematics-policy'), {
      enabled: enabled.checked,
      pollIntervalSeconds: poll.valueAsNumber,
      freshnessThresholdSeconds: freshness.valueAsNumber,
      silentAfterSeconds: silent.valueAsNumber,
      retentionDays: retention.valueAsNumber,
      eventRetentionDays: eventRetention.valueAsNumber,
      socThresholdsPct: thresholds(soc.value),
      cutoverGate: {
        windowHours: gateWindow.valueAsNumber,
        minCoveragePct: gateCoverage.valueAsNumber,
        minAgreementPct: gateAgreement.valueAsNumber,
        matchSeconds: gateMatch.valueAsNumber,
      },
    });
    fill(workspace);
    deps.onChanged(workspace);
    return 'Policy saved.';
  });

  const modes = (['core', 'shadow', 'legacy'] as const).map((mode) => input({ type: 'radio', name: 'mode', value: mode }));
  const reason = input({ name: 'reason', maxlength: '500' });
  const force = input({ name: 'force', type: 'checkbox' });
  const cutoverMessage = formMessage('cutover-message');
  const cutoverForm = el(
    'form',
    { class: 'settings-form', 'data-testid': 'cutover-form' },
    el(
      'fieldset',
      {},
      el('legend', {}, 'Which poller owns this workspace'),
      el('label', { class: 'check' }, modes[0]!, ' core: core polls it'),
      el('label', { class: 'check' }, modes[1]!, " shadow: the legacy poller owns it; core polls beside it for parity only"),
      el('label', { class: 'check' }, modes[2]!, ' legacy: another poller does, and its updates come in through ingest'),
    ),
    field('Reason', reason, 'Recorded with the change; needed to force one.'),
    el('label', { class: 'check' }, force, ' Force: go to core even though parity does not meet the gate'),
    el('div', { class: 'form-actions' }, el('button', { type: 'submit' }, 'Save cutover')),
    cutoverMessage.node,
  );
  onSubmit(cutoverForm, cutoverMessage, deps.onUnauthorized, async () => {
    const mode = modes.find((radio) => radio.checked)?.value ?? 'core';
    const why = reason.value.trim();
    const workspace = await deps.api.send<Workspace>('PUT', path('/cutover'), { mode, ...(why ? { reason: why } : {}), ...(force.checked ? { force: true } : {}) });
    reason.value = '';
    force.checked = false;
    fill(workspace);
    deps.onChanged(workspace);
    // The change made here shows at once; one made elsewhere arrives as its event.
    migration.refresh();
    return `Cutover set to ${workspace.cutover.mode}.`;
  });

  $('settings-workspace').replaceChildren(renameForm);
  $('settings-policy').replaceChildren(policyForm);
  $('settings-cutover').replaceChildren(cutoverForm);

  function fill(workspace: Workspace): void {
    name.value = workspace.name;
    const policy = workspace.policy;
    enabled.checked = policy.enabled;
    poll.value = String(policy.pollIntervalSeconds);
    freshness.value = String(policy.freshnessThresholdSeconds);
    silent.value = String(policy.silentAfterSeconds);
    retention.value = String(policy.retentionDays);
    eventRetention.value = String(policy.eventRetentionDays);
    soc.value = policy.socThresholdsPct.join(', ');
    gateWindow.value = String(policy.cutoverGate.windowHours);
    gateCoverage.value = String(policy.cutoverGate.minCoveragePct);
    gateAgreement.value = String(policy.cutoverGate.minAgreementPct);
    gateMatch.value = String(policy.cutoverGate.matchSeconds);
    for (const radio of modes) radio.checked = radio.value === workspace.cutover.mode;
  }

  return {
    async load() {
      if (!deps.workspaceId()) return;
      for (const message of [renameMessage, policyMessage, cutoverMessage]) message.clear();
      migration.show();
      try {
        const [workspace] = await Promise.all([deps.api.get<Workspace>(path()), keys.load()]);
        fill(workspace);
      } catch (error) {
        if (error instanceof Unauthorized) deps.onUnauthorized();
        else policyMessage.fail(`the workspace could not be read: ${(error as Error).message}`);
      }
    },
    cutoverChanged: () => migration.refresh(),
    leave() {
      keys.hideNewKey();
      migration.leave();
    },
  };
}
