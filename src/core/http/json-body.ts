/**
 * JSON request bodies. `JSON.parse` makes a key named `__proto__` an own property of a fresh object (no pollution
 * yet), but any later merge (`Object.assign`, a deep copy) would set the prototype of its target from it; and a
 * `constructor` key whose value has a `prototype` key is the other known route. Such keys are found here, right
 * after parsing, and never reach the rest of the server: an admin request carrying one is refused with a problem
 * that says so, and an ingest batch loses only the update that carries one (`UnsafeUpdate`, judged `malformed`).
 *
 * The scan runs only when the text could hold such a key (the same cheap test secure-json-parse uses, unicode
 * escapes included), so ordinary bodies pay one regular-expression test.
 */
import { UnsafeUpdate } from '../ingest/unsafe-update.ts';
import { HttpProblem } from './problem.ts';

const suspectProto = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;
const suspectConstructor = /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/;

const hasOwn = (value: object, key: string) => Object.prototype.hasOwnProperty.call(value, key);

/** True for a key that would reach a prototype if the object were merged into another. */
function isPoisoned(holder: Record<string, unknown>, key: string): boolean {
  if (key === '__proto__') return true;
  if (key !== 'constructor') return false;
  const value = holder[key];
  return typeof value === 'object' && value !== null && hasOwn(value, 'prototype');
}

/**
 * Removes every poisoned key under `root` (iteratively: a deeply nested body cannot exhaust the stack) and answers
 * the paths it removed, like `readings.0.value.__proto__`.
 */
export function removePoisonedKeys(root: unknown, prefix = ''): string[] {
  const found: string[] = [];
  const stack: { value: unknown; path: string }[] = [{ value: root, path: prefix }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    const holder = value as Record<string, unknown>;
    for (const key of Object.keys(holder)) {
      // Keys are the sender's text: quoted unless plain, so a control character cannot reach a message or a row.
      const name = /^[\w$-]{1,64}$/.test(key) ? key : JSON.stringify(key.slice(0, 64));
      const at = path ? `${path}.${name}` : name;
      if (isPoisoned(holder, key)) {
        found.push(at);
        delete holder[key];
        continue;
      }
      stack.push({ value: holder[key], path: at });
    }
  }
  return found;
}

/** The places found, for a message: a few, and never very long. */
const where = (found: readonly string[]) => found.slice(0, 3).map((at) => at.slice(0, 200)).join(', ');

function parseText(text: string): unknown {
  if (text.trim() === '') throw new HttpProblem(400, 'invalid_json', 'the request body is empty; send a JSON document');
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'invalid_json', 'the request body is not valid JSON');
  }
}

const mightBePoisoned = (text: string) => suspectProto.test(text) || suspectConstructor.test(text);

/** Any JSON route's body: a body with a poisoned key is refused whole, naming where. */
export function parseJsonBody(text: string): unknown {
  const value = parseText(text);
  if (!mightBePoisoned(text)) return value;
  const found = removePoisonedKeys(value);
  if (found.length > 0) {
    throw new HttpProblem(400, 'forbidden_key', `the body carries a key that would reach an object's prototype, at ${where(found)}; such keys are refused`);
  }
  return value;
}

/**
 * An ingest batch's body: each update that carries a poisoned key becomes an `UnsafeUpdate` on its own, so the
 * batch's other updates are judged as usual. Poisoned keys outside the updates are dropped: nothing reads them.
 */
export function parseIngestBody(text: string): unknown {
  const value = parseText(text);
  if (!mightBePoisoned(text) || typeof value !== 'object' || value === null) return value;
  const body = value as Record<string, unknown>;
  const updates = hasOwn(body, 'updates') ? body.updates : undefined;
  if (Array.isArray(updates)) {
    updates.forEach((update, index) => {
      const found = removePoisonedKeys(update);
      if (found.length > 0) {
        updates[index] = new UnsafeUpdate(`the update carries a key that would reach an object's prototype, at ${where(found)}; such keys are refused`, update);
      }
    });
  }
  // Whatever is left outside the updates (the array itself was scanned entry by entry above).
  for (const key of Object.keys(body)) if (key !== 'updates' && isPoisoned(body, key)) delete body[key];
  for (const key of Object.keys(body)) if (key !== 'updates') removePoisonedKeys(body[key]);
  return body;
}
