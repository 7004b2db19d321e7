/**
 * A workspace's API keys (admin): listed by name (the API never answers a key again), made, and revoked. A new key
 * is in the answer that made it only: it is shown once, in a read-only field to copy from, until the operator says
 * it is copied, leaves the page or opens another workspace; then it is gone from the page.
 */
import type { ApiKey } from './api-types.ts';
import { Unauthorized, type Api } from './api.ts';
import { since } from './clock.ts';
import { el } from './dom.ts';
import { button, failureText, field, formMessage, input, onSubmit } from './forms.ts';

export interface ApiKeys {
  load(): Promise<void>;
  hideNewKey(): void;
}

export function createApiKeys(deps: { api: Api; path(suffix: string): string; onUnauthorized(): void; root: HTMLElement }): ApiKeys {
  const list = el('ul', { class: 'key-list', 'data-testid': 'api-keys' });
  const keyName = input({ name: 'keyName', required: '', maxlength: '200', placeholder: 'dispatch board' });
  const message = formMessage('api-key-message');
  const form = el('form', { class: 'settings-form inline', 'data-testid': 'api-key-form' }, field('Key name', keyName), el('div', { class: 'form-actions' }, el('button', { type: 'submit' }, 'Create key')), message.node);
  const shown = input({ readonly: '', 'aria-label': 'The new key', class: 'new-key-value', 'data-testid': 'new-key-value' });
  const copied = button('I have copied it', { 'data-testid': 'new-key-done' });
  const newKey = el(
    'div',
    { class: 'new-key', 'data-testid': 'new-key', role: 'region', 'aria-label': 'The new key' },
    el('p', {}, el('strong', {}, 'Copy this key now: it is shown this once and never again. '), 'If it is lost, revoke it and create another.'),
    shown,
    copied,
  );
  newKey.hidden = true;
  deps.root.replaceChildren(list, form, newKey);

  function hideNewKey(): void {
    shown.value = '';
    newKey.hidden = true;
  }
  copied.addEventListener('click', () => {
    hideNewKey();
    keyName.focus();
  });
  shown.addEventListener('focus', () => shown.select());

  onSubmit(form, message, deps.onUnauthorized, async () => {
    const made = await deps.api.send<ApiKey & { key: string }>('POST', deps.path('/api-keys'), { name: keyName.value.trim() });
    shown.value = made.key;
    newKey.hidden = false;
    keyName.value = '';
    shown.focus();
    await load();
    return `Key "${made.name}" created.`;
  });

  function row(key: ApiKey): HTMLLIElement {
    const item = el(
      'li',
      { 'data-testid': 'api-key', 'data-key-id': key.id },
      el('span', { class: 'name' }, key.name),
      ' ',
      el('span', { class: 'detail' }, `made ${since(key.createdAt)}, ${key.lastUsedAt ? `last used ${since(key.lastUsedAt)}` : 'never used'}`),
    );
    if (key.revokedAt) {
      item.append(' ', el('span', { class: 'badge disabled' }, `revoked ${since(key.revokedAt)}`));
      return item;
    }
    const revoke = button('Revoke', { class: 'link danger', 'aria-label': `Revoke the key ${key.name}` });
    revoke.addEventListener('click', () => {
      if (!window.confirm(`Revoke the key "${key.name}"? Every screen signed in with it is signed out.`)) return;
      deps.api
        .send('DELETE', deps.path(`/api-keys/${key.id}`))
        .then(async () => {
          await load();
          message.say(`Key "${key.name}" revoked.`);
        })
        .catch((error: unknown) => (error instanceof Unauthorized ? deps.onUnauthorized() : message.fail(failureText(error))));
    });
    item.append(' ', revoke);
    return item;
  }

  async function load(): Promise<void> {
    const { items } = await deps.api.get<{ items: ApiKey[] }>(deps.path('/api-keys'));
    list.replaceChildren(...(items.length === 0 ? [el('li', { class: 'muted' }, 'No key yet.')] : items.map(row)));
  }

  return { load, hideNewKey };
}
