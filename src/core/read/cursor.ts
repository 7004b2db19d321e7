/**
 * Opaque page cursors: the sort key of the last item returned, as base64url JSON. A cursor that does not decode
 * to the expected shape is the caller's error (400 invalid_cursor), and nothing from it reaches SQL unchecked.
 */
import { DomainError } from '../errors.ts';

type Part = 'text' | 'uuid' | 'timestamp' | 'integer';

const checks: Record<Part, (value: unknown) => boolean> = {
  text: (v) => typeof v === 'string' && v.length <= 1000 && !v.includes('\u0000'),
  uuid: (v) => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
  timestamp: (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(v) && Number.isFinite(Date.parse(v)),
  integer: (v) => typeof v === 'number' && Number.isSafeInteger(v),
};

export function encodeCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, shape: readonly Part[]): (string | number)[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    values = undefined;
  }
  if (!Array.isArray(values) || values.length !== shape.length || values.some((v, i) => !checks[shape[i]!](v))) {
    throw new DomainError('invalid', 'invalid_cursor', 'cursor is not one this API returned');
  }
  return values as (string | number)[];
}
