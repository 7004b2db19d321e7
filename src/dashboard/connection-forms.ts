/**
 * The onboarding page's connections: each with its options (never its credentials: the API does not answer them),
 * and, for the admin, "Add connection" (the providers core supports, from `GET /v1/providers`), "Edit" (label,
 * enabled, base URL, options, credentials replaced) and "Remove". Credentials are typed or pasted as a JSON object,
 * sent once and cleared from the page as soon as the request is made, whatever it answers.
 */
import type { Connection, Provider } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { $, el } from './dom.ts';
import { button, failureText, field, formMessage, input, jsonObject, onSubmit, textArea, type FormMessage } from './forms.ts';

export interface ConnectionPanelDeps {
  api: Api;
  workspaceId(): string | null;
  admin(): boolean;
  /** A connection was added, changed or removed: the list is read again. */
  onChanged(): Promise<void>;
  onUnauthorized(): void;
}

export interface ConnectionPanel {
  render(connections: readonly Connection[]): void;
  /** Another workspace, another page or signed out: the forms close, and nothing typed into them stays. */
  reset(): void;
}

function optionText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function credentialsHint(provider: Provider | undefined): string {
  if (!provider) return '';
  const { fields, required } = provider.credentials;
  const named = fields.map((f) => (required.includes(f) ? `${f} (required)` : f)).join(', ');
  return `A JSON object${named ? ` with ${named}` : ''}. Sent once, encrypted at rest, never shown again.`;
}

function credentialsExample(provider: Provider | undefined): string {
  return provider ? JSON.stringify(Object.fromEntries(provider.credentials.fields.map((f) => [f, '…']))) : '';
}

function baseUrlHint(provider: Provider | undefined): string {
  if (!provider) return '';
  const schemes = provider.baseUrl.schemes.join(' ');
  return provider.baseUrl.required ? `Required: the server to connect to (${schemes}).` : `Leave empty for ${provider.baseUrl.default}.`;
}

/** Sends a change and clears the credentials field once it is sent, whatever the answer. */
async function sendClearing<T>(secret: HTMLTextAreaElement, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } finally {
    secret.value = '';
  }
}

export function createConnectionPanel(deps: ConnectionPanelDeps): ConnectionPanel {
  const path = (suffix = '') => `/v1/workspaces/${deps.workspaceId()}/connections${suffix}`;
  let providers: Promise<Provider[]> | undefined;
  const listMessage = formMessage('connections-message');
  $('onboarding-connections').before(listMessage.node);

  const provider = el('select', { name: 'provider', required: '' });
  const transport = el('select', { name: 'transport', required: '' });
  const label = input({ name: 'label', maxlength: '200' });
  const baseUrl = input({ name: 'baseUrl', inputmode: 'url', maxlength: '2048', spellcheck: 'false' });
  const credentials = textArea({ name: 'credentials', required: '', 'data-testid': 'connection-credentials' });
  const options = textArea({ name: 'options', placeholder: '{}' });
  const baseUrlField = field('Base URL', baseUrl, ' ');
  const credentialsField = field('Credentials (JSON)', credentials, ' ');
  const optionsField = field('Options (JSON, optional)', options, ' ');
  const addMessage = formMessage('add-connection-message');
  const cancel = button('Cancel');
  const addForm = el(
    'form',
    { class: 'settings-form', 'data-testid': 'add-connection-form', 'aria-label': 'Add connection' },
    field('Provider', provider),
    field('Transport', transport),
    field('Label (optional)', label),
    baseUrlField,
    credentialsField,
    optionsField,
    el('div', { class: 'form-actions' }, el('button', { type: 'submit' }, 'Add connection'), cancel),
    addMessage.node,
  );
  const wrap = $('connection-form-wrap');
  const toggle = $<HTMLButtonElement>('add-connection');
  wrap.replaceChildren(addForm);

  const hint = (fieldNode: HTMLDivElement, text: string) => {
    const small = fieldNode.querySelector('small');
    if (small) small.textContent = text;
  };
  async function chosen(): Promise<Provider | undefined> {
    return (await (providers ??= deps.api.get<{ items: Provider[] }>('/v1/providers').then((answer) => answer.items))).find((p) => p.name === provider.value);
  }
  async function describe(): Promise<void> {
    const p = await chosen();
    transport.replaceChildren(...(p?.transports ?? []).map((t) => el('option', { value: t }, t)));
    label.placeholder = p?.title ?? '';
    baseUrl.placeholder = p?.baseUrl.default ?? 'https://…';
    baseUrl.required = p?.baseUrl.required ?? false;
    credentials.placeholder = credentialsExample(p);
    hint(baseUrlField, baseUrlHint(p));
    hint(credentialsField, credentialsHint(p));
    hint(optionsField, p && p.options.length > 0 ? `Fields: ${p.options.join(', ')} (PROVIDERS.md).` : 'This provider takes no options.');
  }
  provider.addEventListener('change', () => void describe());

  function close(): void {
    wrap.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    credentials.value = '';
    addMessage.clear();
  }
  async function open(): Promise<void> {
    wrap.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    try {
      if (provider.options.length === 0) {
        const list = await (providers ??= deps.api.get<{ items: Provider[] }>('/v1/providers').then((answer) => answer.items));
        provider.replaceChildren(...list.map((p) => el('option', { value: p.name }, `${p.title} (${p.transports.join(', ')})`)));
      }
      await describe();
      provider.focus();
    } catch (error) {
      providers = undefined;
      if (error instanceof Unauthorized) deps.onUnauthorized();
      else addMessage.fail(`the providers could not be read: ${failureText(error)}`);
    }
  }
  toggle.addEventListener('click', () => (wrap.hidden ? void open() : close()));
  cancel.addEventListener('click', () => {
    close();
    toggle.focus();
  });

  onSubmit(addForm, addMessage, deps.onUnauthorized, async () => {
    const given = jsonObject(options.value, 'Options', true);
    const body = {
      provider: provider.value,
      transport: transport.value,
      ...(label.value.trim() ? { label: label.value.trim() } : {}),
      ...(baseUrl.value.trim() ? { baseUrl: baseUrl.value.trim() } : {}),
      credentials: jsonObject(credentials.value, 'Credentials', false),
      ...(given ? { options: given } : {}),
    };
    const made = await sendClearing(credentials, () => deps.api.send<Connection>('POST', path(), body));
    addForm.reset();
    await describe();
    await deps.onChanged();
    listMessage.say(`Connection "${made.label}" added: its devices appear among the discovered devices after its first poll or once its stream is up.`);
    return '';
  });

  function editForm(connection: Connection, item: HTMLLIElement, message: FormMessage): HTMLFormElement {
    const editLabel = input({ name: 'label', required: '', maxlength: '200', value: connection.label });
    const editEnabled = input({ name: 'enabled', type: 'checkbox' });
    editEnabled.checked = connection.enabled;
    const editBaseUrl = input({ name: 'baseUrl', required: '', inputmode: 'url', maxlength: '2048', spellcheck: 'false', value: connection.baseUrl });
    const editOptions = textArea({ name: 'options', rows: '4' });
    editOptions.value = JSON.stringify(connection.options, null, 2);
    const editCredentials = textArea({ name: 'credentials', 'data-testid': 'connection-credentials' });
    const back = button('Cancel');
    const form = el(
      'form',
      { class: 'settings-form', 'data-testid': 'edit-connection-form', 'aria-label': `Edit ${connection.label}` },
      field('Label', editLabel),
      el('label', { class: 'check' }, editEnabled, ' Enabled'),
      field('Base URL', editBaseUrl),
      field('Options (JSON)', editOptions, 'Replaces the options whole.'),
      field('Replace credentials (JSON)', editCredentials, 'Leave empty to keep the current credentials; they are never shown.'),
      el('div', { class: 'form-actions' }, el('button', { type: 'submit' }, 'Save connection'), back),
      message.node,
    );
    back.addEventListener('click', () => {
      form.remove();
      item.querySelector<HTMLButtonElement>('[data-action=edit]')?.focus();
    });
    onSubmit(form, message, deps.onUnauthorized, async () => {
      const replaced = jsonObject(editCredentials.value, 'Credentials', true);
      const body = {
        label: editLabel.value.trim(),
        enabled: editEnabled.checked,
        baseUrl: editBaseUrl.value.trim(),
        options: jsonObject(editOptions.value, 'Options', true) ?? {},
        ...(replaced ? { credentials: replaced } : {}),
      };
      const saved = await sendClearing(editCredentials, () => deps.api.send<Connection>('PATCH', path(`/${connection.id}`), body));
      await deps.onChanged();
      listMessage.say(`Connection "${saved.label}" saved${replaced ? ', with its new credentials' : ''}.`);
      return '';
    });
    return form;
  }

  function actions(connection: Connection, item: HTMLLIElement): HTMLElement {
    const message = formMessage('edit-connection-message');
    const edit = button('Edit', { class: 'link', 'data-action': 'edit', 'aria-label': `Edit ${connection.label}` });
    const remove = button('Remove', { class: 'link danger', 'aria-label': `Remove ${connection.label}` });
    edit.addEventListener('click', () => {
      if (item.querySelector('form')) return;
      const form = editForm(connection, item, message);
      item.append(form);
      form.querySelector('input')?.focus();
    });
    remove.addEventListener('click', () => {
      if (!window.confirm(`Remove the connection "${connection.label}"? Its device bindings go with it; its vehicles and their history stay.`)) return;
      deps.api
        .send('DELETE', path(`/${connection.id}`))
        .then(async () => {
          await deps.onChanged();
          listMessage.say(`Connection "${connection.label}" removed.`);
        })
        .catch((error: unknown) => (error instanceof Unauthorized ? deps.onUnauthorized() : listMessage.fail(failureText(error))));
    });
    return el('div', { class: 'row-actions' }, edit, remove);
  }

  function item(c: Connection): HTMLLIElement {
    const li = el(
      'li',
      { 'data-testid': 'onboarding-connection', 'data-connection': c.id },
      el('div', {}, el('span', { class: 'name' }, c.label), ' ', el('span', { class: `badge ${c.enabled ? 'ok' : 'disabled'}` }, c.enabled ? 'enabled' : 'disabled')),
      el('div', { class: 'detail' }, `${c.provider}, ${c.transport} — ${c.baseUrl}`),
      el(
        'dl',
        { class: 'options' },
        ...(Object.keys(c.options).length === 0 ? [el('dd', {}, 'no options')] : Object.entries(c.options).flatMap(([key, value]) => [el('dt', {}, key), el('dd', {}, optionText(value))])),
      ),
    );
    if (deps.admin()) li.append(actions(c, li));
    return li;
  }

  return {
    render(connections) {
      toggle.hidden = !deps.admin();
      $('onboarding-connections').replaceChildren(
        ...(connections.length === 0
          ? [el('li', { class: 'muted' }, deps.admin() ? 'No connection yet: "Add connection" connects a provider account.' : 'No connection yet: an admin connects a provider account.')]
          : connections.map(item)),
      );
    },
    reset() {
      close();
      addForm.reset();
      for (const open of $('onboarding-connections').querySelectorAll('form')) open.remove();
      listMessage.clear();
    },
  };
}
