/**
 * Reading one protojson `Value` (reference/provider-wire-formats.md §3b). Pure. Each reader accepts the typed
 * member and the string form vehicles send without `prefer_typed`; anything else, and `invalid: true`, reads as
 * undefined, so the caller skips that datum alone.
 */
import { isRecord } from '../json-values.ts';

/** A finite number from `stringValue`, `doubleValue`, `floatValue`, `intValue` or `longValue`. */
export function numberOf(value: Record<string, unknown>): number | undefined {
  if (value.invalid === true) return undefined;
  for (const member of ['stringValue', 'doubleValue', 'floatValue', 'intValue', 'longValue']) {
    const raw = value[member];
    if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
    if (typeof raw === 'string') return decimal(raw);
  }
  return undefined;
}

/** `locationValue`, or the string form the telemetry server would convert: "(37.412374 N, 122.145867 W)". */
export function locationOf(value: Record<string, unknown>): { lat: number; lon: number } | undefined {
  if (value.invalid === true) return undefined;
  const location = value.locationValue;
  if (isRecord(location)) {
    const { latitude, longitude } = location;
    return typeof latitude === 'number' && typeof longitude === 'number' && Number.isFinite(latitude) && Number.isFinite(longitude)
      ? { lat: latitude, lon: longitude }
      : undefined;
  }
  if (typeof value.stringValue !== 'string') return undefined;
  const match = /^\(\s*(\d+(?:\.\d+)?)\s*([NS])\s*,\s*(\d+(?:\.\d+)?)\s*([EW])\s*\)$/.exec(value.stringValue.trim());
  if (!match) return undefined;
  return {
    lat: Number(match[1]) * (match[2] === 'S' ? -1 : 1),
    lon: Number(match[3]) * (match[4] === 'W' ? -1 : 1),
  };
}

/**
 * An enum's name without its type prefix ("Charging" for DetailedChargeStateCharging, "P" for ShiftStateP), from
 * its typed member or a `stringValue` (with or without the prefix).
 */
export function enumOf(value: Record<string, unknown>, typedMember: string, prefix: string): string | undefined {
  if (value.invalid === true) return undefined;
  const raw = value[typedMember] ?? value.stringValue;
  if (typeof raw !== 'string' || raw.length === 0) return undefined;
  return raw.startsWith(prefix) ? raw.slice(prefix.length) : raw;
}

/** A plain decimal (no hex, no empty string, no "Infinity"), as Number() alone would accept all of those. */
function decimal(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return undefined;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : undefined;
}
