/**
 * One Traccar websocket text frame -> a DecodedFrame (reference/provider-wire-formats.md §3a: each frame is an
 * object with one key, `{}` is the keepalive). Never throws: a frame we cannot read is `bad` with a reason, and
 * the next frame is decoded as if nothing happened.
 *
 * Positions whose device is not known yet (a device added in Traccar after the socket opened, before its
 * `devices` frame) are left out of a readings result when the frame also carries readings; a frame that delivers
 * nothing at all because of skipped positions is `bad`, so the runtime counts it. Traccar pushes one position per
 * frame once a socket is open (AsyncSocket.onUpdatePosition sends `List.of(position)`), so in practice an
 * unresolvable position is counted; only the opening frame batches positions (the latest of every device).
 */
import type { CanonicalReading } from '../../canonical/update.ts';
import type { DeviceReadings } from '../poll-adapter.ts';
import { parseObjectFrame } from '../json-values.ts';
import type { DecodedFrame } from '../stream-adapter.ts';
import { knownDevices, learnDevices } from './device-ids.ts';
import { mapPosition } from './mapping.ts';
import { defaultAttributeSources, type AttributeSources } from './options.ts';

const frameKeys = ['positions', 'devices', 'events'] as const;

/** `sources`: which attributes carry which signals, as the connection's options say (default: Traccar's own keys). */
export function decodeTraccarFrame(
  frame: string,
  session: Map<string, unknown>,
  sources: Readonly<AttributeSources> = defaultAttributeSources,
): DecodedFrame {
  const read = parseObjectFrame(frame);
  if (!read.ok) return read.bad;
  const parsed = read.object;
  const keys = Object.keys(parsed);
  if (keys.length === 0) return { kind: 'keepalive' };
  if (!keys.some((key) => (frameKeys as readonly string[]).includes(key))) {
    return { kind: 'bad', reason: `unexpected frame (keys: ${keys.slice(0, 3).join(', ').slice(0, 80)})` };
  }
  for (const key of frameKeys) {
    if (key in parsed && !Array.isArray(parsed[key])) return { kind: 'bad', reason: `"${key}" is not an array` };
  }

  // Devices first: a frame carrying both must resolve its positions with the ids it brings.
  if (Array.isArray(parsed.devices)) learnDevices(session, parsed.devices);
  // Events carry no readings: an ignition event is followed by the position that reports the new state.
  if (!Array.isArray(parsed.positions)) return { kind: 'readings', devices: [] };
  return decodePositions(parsed.positions, session, sources);
}

function decodePositions(positions: readonly unknown[], session: Map<string, unknown>, sources: Readonly<AttributeSources>): DecodedFrame {
  const ids = knownDevices(session);
  const byDevice = new Map<string, CanonicalReading[]>();
  const skipped: string[] = [];
  let readingCount = 0;
  for (const position of positions) {
    const mapped = mapPosition(position, (deviceId) => ids.get(deviceId), sources);
    if (!mapped.ok) {
      skipped.push(mapped.reason);
      continue;
    }
    if (mapped.readings.length === 0) continue;
    readingCount += mapped.readings.length;
    const list = byDevice.get(mapped.externalDeviceId);
    if (list) list.push(...mapped.readings);
    else byDevice.set(mapped.externalDeviceId, [...mapped.readings]);
  }
  if (readingCount === 0 && skipped.length > 0) {
    return { kind: 'bad', reason: `${skipped.length} of ${positions.length} positions skipped; first: ${skipped[0]}` };
  }
  const devices: DeviceReadings[] = [...byDevice].map(([externalDeviceId, readings]) => ({ externalDeviceId, readings }));
  return { kind: 'readings', devices };
}
