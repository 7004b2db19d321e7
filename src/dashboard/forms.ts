/**
 * What every admin form of the dashboard shares: labelled fields, a message line that says what happened (the
 * API's problem detail and code on a failure, as the API words them, and each of its reasons on a line of its own when
 * it gives several), a submit button that cannot be pressed twice,
 * and JSON objects read from text areas with the reason when they are not one.
 */
import { ApiProblem, Unauthorized } from './api.ts';
import { el, setText } from './dom.ts';

let ids = 0;

/**
 * A labelled control, with an optional hint under it that is the control's description (read after its name, not
 * as part of it).
 */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLDivElement {
  control.id ||= `field-${(ids += 1)}`;
  const wrap = el('div', { class: 'field' }, el('label', { class: 'field-label', for: control.id }, label), control);
  if (hint) {
    const id = `${control.id}-hint`;
    control.setAttribute('aria-describedby', id);
    wrap.append(el('small', { class: 'hint', id }, hint));
  }
  return wrap;
}

/** What a failed call says to the operator: the problem's detail, then its stable code. */
export function failureText(error: unknown): string {
  if (error instanceof ApiProblem) return error.code ? `${error.message} (${error.code})` : error.message;
  return (error as Error).message;
}

/**
 * A failure as a line and, when the problem gives each reason it was refused for (`reasons`, as a cutover gate not
 * met does), those reasons to list under it; the line then leaves out the reasons the detail strings together.
 */
export function failureOf(error: unknown): { text: string; reasons: string[] } {
  const reasons = error instanceof ApiProblem ? error.problem.reasons : undefined;
  if (!(error instanceof ApiProblem) || !Array.isArray(reasons) || reasons.length === 0 || !reasons.every((r) => typeof r === 'string')) {
    return { text: failureText(error), reasons: [] };
  }
  const detail = error.message.replace(`: ${reasons.join('; ')}`, '');
  return { text: error.code ? `${detail} (${error.code})` : detail, reasons };
}

export interface FormMessage {
  readonly node: HTMLDivElement;
  say(text: string): void;
  /** What failed, with each of `reasons` as a line of its own. */
  fail(text: string, reasons?: readonly string[]): void;
  clear(): void;
}

/** A form's message line: announced politely when it says done, at once (an alert) when it says what failed. */
export function formMessage(testId: string): FormMessage {
  const node = el('div', { class: 'form-message muted', role: 'status', 'data-testid': testId });
  return {
    node,
    say(text) {
      node.setAttribute('role', 'status');
      node.className = 'form-message muted';
      setText(node, text);
    },
    fail(text, reasons = []) {
      node.setAttribute('role', 'alert');
      node.className = 'form-message error';
      if (reasons.length === 0) setText(node, text);
      else node.replaceChildren(text, el('ul', { class: 'form-reasons', 'data-testid': `${testId}-reasons` }, ...reasons.map((reason) => el('li', {}, reason))));
    },
    clear() {
      setText(node, '');
    },
  };
}

/**
 * Runs a form's action on submit: the submit button is off while it runs, the message says what it answered. A
 * refused token signs out; any other failure is said in the message, and the form keeps what was typed except what
 * `action` clears itself (credentials are cleared whatever the answer).
 */
export function onSubmit(form: HTMLFormElement, message: FormMessage, onUnauthorized: () => void, action: () => Promise<string>): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const buttons = [...form.querySelectorAll<HTMLButtonElement>('button[type=submit]')];
    for (const button of buttons) button.disabled = true;
    message.clear();
    action()
      .then((done) => message.say(done))
      .catch((error: unknown) => {
        if (error instanceof Unauthorized) onUnauthorized();
        else {
          const { text, reasons } = failureOf(error);
          message.fail(text, reasons);
        }
      })
      .finally(() => {
        for (const button of buttons) button.disabled = false;
      });
  });
}

/**
 * A text area's JSON object: undefined when it is empty (and `optional`), an error naming the field when it is not
 * an object.
 */
export function jsonObject(text: string, what: string, optional: boolean): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  if (trimmed === '') {
    if (optional) return undefined;
    throw new Error(`${what}: paste a JSON object, e.g. {"apiToken": "…"}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${what} must be a JSON object ({…})`);
  return parsed as Record<string, unknown>;
}

export function input(attrs: Record<string, string>): HTMLInputElement {
  return el('input', { autocomplete: 'off', ...attrs });
}

export function textArea(attrs: Record<string, string>): HTMLTextAreaElement {
  return el('textarea', { autocomplete: 'off', spellcheck: 'false', rows: '3', ...attrs });
}

export function button(text: string, attrs: Record<string, string> = {}): HTMLButtonElement {
  return el('button', { type: 'button', ...attrs }, text);
}
