/** Recent rejections: counts by reason, and the latest few with their age, which moves with the clock. */
import type { Rejection } from './api-types.ts';
import { since } from './clock.ts';
import { $, el, setText } from './dom.ts';

const rejectionText = (r: Rejection) => ` ${since(r.rejectedAt)} — ${r.externalDeviceId ?? 'unknown device'}${r.signal ? ` ${r.signal}` : ''}: ${r.detail}`;

export function createRejectionsPanel(): { render(items: readonly Rejection[]): void; tick(): void } {
  let texts: { text: Text; rejection: Rejection }[] = [];
  return {
    render(items) {
      const counts = new Map<string, number>();
      for (const r of items) counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
      $('rejection-reasons').replaceChildren(
        ...(counts.size === 0 ? [el('li', {}, 'none lately')] : [...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => el('li', { 'data-testid': 'rejection-reason' }, `${reason} ${n}`))),
      );
      texts = items.slice(0, 8).map((rejection) => ({ text: document.createTextNode(rejectionText(rejection)), rejection }));
      $('rejections').replaceChildren(...texts.map(({ text, rejection }) => el('li', {}, el('code', {}, rejection.reason), text)));
    },
    tick() {
      for (const { text, rejection } of texts) setText(text, rejectionText(rejection));
    },
  };
}
