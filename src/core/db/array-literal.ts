/**
 * PostgreSQL array literals built directly, for the hot path's bound arrays. The driver's generic array
 * serializer inspects and escapes element by element; for the batch statements, which bind tens of thousands of
 * UUIDs, timestamps and names, building the literal here is several times cheaper. The result is bound as one
 * text parameter and cast in SQL (`$1::uuid[]`), identically on PostgreSQL and PGlite.
 */
const needsEscape = /["\\]/;

/** `{"a","b",NULL}`: every element quoted, so commas, braces and spaces inside need nothing more. */
export function textArray(values: readonly (string | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) {
    if (i > 0) out += ',';
    const value = values[i];
    if (value === null || value === undefined) out += 'NULL';
    else out += needsEscape.test(value) ? `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : `"${value}"`;
  }
  return `${out}}`;
}

export function intArray(values: readonly number[]): string {
  return `{${values.join(',')}}`;
}

export function boolArray(values: readonly boolean[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) out += i > 0 ? (values[i] ? ',t' : ',f') : values[i] ? 't' : 'f';
  return `${out}}`;
}

/**
 * Serialized JSON values separated by U+001E (the record separator), for `string_to_table($n, E'\x1e')`:
 * splitting on a character costs the server a fifth of `json_array_elements`, which parses the whole array and then
 * copies each element out. JSON.stringify never writes the character (control
 * characters inside strings come out escaped, and it adds no whitespace). At least one value: an empty text would
 * still be one (empty) row.
 */
export function jsonRecords(serialized: readonly string[]): string {
  if (serialized.length === 0) throw new Error('jsonRecords takes at least one value');
  return serialized.join('\x1e');
}

/** A JSON array of already-serialized JSON values, for `json_array_elements($n::json)` (or its jsonb twin). */
export function jsonArray(serialized: readonly string[]): string {
  return `[${serialized.join(',')}]`;
}
