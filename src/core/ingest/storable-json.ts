/**
 * Makes an offending update safe to keep in a jsonb column. A rejected update can hold anything a sender can
 * put in JSON; PostgreSQL's jsonb refuses NUL characters and unpaired surrogates, deep nesting can overflow a
 * recursive serializer, and a huge body should not be stored whole. The result keeps what an operator needs to
 * see and marks what it cut.
 */
const maxDepth = 32;
const maxStringLength = 2048;
const maxEntries = 200;
const maxStoredChars = 64 * 1024;
const previewChars = 8 * 1024;

const unpairedSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function cleanString(text: string): string {
  const cut = text.length > maxStringLength ? `${text.slice(0, maxStringLength)}…[${text.length - maxStringLength} more characters]` : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/\u0000/g, '\uFFFD').replace(unpairedSurrogate, '\uFFFD');
}

function clean(value: unknown, depth: number): unknown {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return cleanString(value);
  if (typeof value !== 'object') return `[${typeof value}]`;
  if (depth >= maxDepth) return '[nested too deep]';
  if (Array.isArray(value)) {
    const items = value.slice(0, maxEntries).map((item) => clean(item, depth + 1));
    if (value.length > maxEntries) items.push(`[${value.length - maxEntries} more items]`);
    return items;
  }
  // No prototype: a key named "__proto__" stays a key instead of replacing the object's prototype.
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let count = 0;
  for (const key of Object.keys(value)) {
    if (count === maxEntries) {
      out['…'] = `[${Object.keys(value).length - maxEntries} more keys]`;
      break;
    }
    out[cleanString(key)] = clean((value as Record<string, unknown>)[key], depth + 1);
    count += 1;
  }
  return out;
}

/** The JSON text to store for an offending value. */
export function storableJson(value: unknown): string {
  const text = JSON.stringify(clean(value, 0)) ?? 'null';
  if (text.length <= maxStoredChars) return text;
  return JSON.stringify({
    truncated: true,
    totalChars: text.length,
    preview: text.slice(0, previewChars).replace(unpairedSurrogate, '\uFFFD'),
  });
}
