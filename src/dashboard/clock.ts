/**
 * Ages in words ("12 s ago"), judged by the server's clock as this tab estimates it: the vehicle list gives each
 * vehicle's sync time and its age at the server, so a tab whose own clock is off still calls a reading that is
 * 12 s old 12 s old, and ages of readings that arrive by event agree with those of the list.
 */
import type { Vehicle } from './api-types.ts';

let offsetMs = 0;

export function serverNow(): number {
  return Date.now() + offsetMs;
}

/** Estimates the server's clock from a vehicle list just received (to about a second: ages are whole seconds). */
export function learnServerClock(vehicles: readonly Vehicle[]): void {
  const sample = vehicles.find((v) => v.lastSyncedAt !== null && v.freshness.syncAgeSeconds !== null);
  if (sample) offsetMs = Date.parse(sample.lastSyncedAt!) + sample.freshness.syncAgeSeconds! * 1000 - Date.now();
}

export function ago(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/** Seconds since `iso` by the server's clock; null for never. */
export function ageSeconds(iso: string | null): number | null {
  return iso === null ? null : Math.max(0, (serverNow() - Date.parse(iso)) / 1000);
}

export function since(iso: string | null): string {
  return iso === null ? '–' : `${ago(ageSeconds(iso))} ago`;
}

export function until(iso: string | null): string {
  if (iso === null) return '';
  const seconds = (Date.parse(iso) - serverNow()) / 1000;
  return seconds <= 0 ? 'due now' : `in ${ago(seconds)}`;
}
