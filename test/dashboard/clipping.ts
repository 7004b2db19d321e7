/**
 * What the browser tests measure on every screen width: the page wider than the window, a table or cell cut, or a
 * form control cut; and form controls shown without a label a screen reader can name. Code that runs in the page
 * reaches its globals through globalThis: the test's own types know no DOM.
 */
import type { Page } from 'playwright-core';

/** Everything clipped on the page, described; empty when nothing is. */
export async function clipped(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const { document, innerWidth, getComputedStyle } = globalThis as any;
    const found: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) found.push(`page ${root.scrollWidth} px wide in a ${root.clientWidth} px window`);
    const shown = (node: any) => node.getClientRects().length > 0 && getComputedStyle(node).visibility !== 'hidden';
    for (const wrap of document.querySelectorAll('.table-wrap')) {
      if (shown(wrap) && wrap.scrollWidth > wrap.clientWidth) found.push(`${wrap.dataset.testid ?? 'table'}: ${wrap.scrollWidth} px in ${wrap.clientWidth} px`);
    }
    for (const node of document.querySelectorAll('th, td, input, select, textarea, button, .field, .form-message')) {
      if (!shown(node)) continue;
      const box = node.getBoundingClientRect();
      const label = `${node.tagName.toLowerCase()} "${(node.dataset.label ?? node.name ?? node.textContent ?? '').trim().slice(0, 30)}"`;
      if (box.left < -0.5 || box.right > innerWidth + 0.5) found.push(`${label} at ${box.left.toFixed(0)}..${box.right.toFixed(0)} of ${innerWidth}`);
      if (/^(TD|TH)$/.test(node.tagName) && node.scrollWidth > node.clientWidth + 1) found.push(`${label} holds ${node.scrollWidth} px in ${node.clientWidth} px`);
    }
    return found;
  });
}

/** Form controls shown without a label a screen reader can name. */
export async function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const { document, getComputedStyle } = globalThis as any;
    return [...document.querySelectorAll('input, select, textarea')]
      .filter((c: any) => c.getClientRects().length > 0 && getComputedStyle(c).visibility !== 'hidden')
      .filter((c: any) => c.labels.length === 0 && !c.getAttribute('aria-label'))
      .map((c: any) => c.name || c.id || c.outerHTML.slice(0, 60));
  });
}
