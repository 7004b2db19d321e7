/**
 * Reading untrusted provider JSON, shared by the mappings and the stream decoders. Pure; nothing here throws.
 */
import type { DecodedFrame } from './stream-adapter.ts';

/** A JSON object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A websocket text frame parsed as a JSON object, or the `bad` frame that says why it is not one. */
export function parseObjectFrame(
  frame: string,
): { ok: true; object: Record<string, unknown> } | { ok: false; bad: Extract<DecodedFrame, { kind: 'bad' }> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame);
  } catch {
    return { ok: false, bad: { kind: 'bad', reason: 'frame is not JSON' } };
  }
  if (!isRecord(parsed)) return { ok: false, bad: { kind: 'bad', reason: 'frame is not a JSON object' } };
  return { ok: true, object: parsed };
}
