/**
 * The deviceId -> uniqueId map a connection learns, kept in the stream session. Positions and events name a
 * device by Traccar's numeric id; Fleetwire binds the uniqueId. The map is filled from GET /api/devices when a
 * socket opens and from every `{"devices":[...]}` frame after that.
 */
import { safeText } from '../../canonical/update.ts';
import { isRecord } from './mapping.ts';

const sessionKey = 'traccar.uniqueIdByDeviceId';

/** The map stored in this session, created on first use. */
export function knownDevices(session: Map<string, unknown>): Map<number, string> {
  const existing = session.get(sessionKey);
  if (existing instanceof Map) return existing as Map<number, string>;
  const created = new Map<number, string>();
  session.set(sessionKey, created);
  return created;
}

/**
 * Learns the ids of every well-formed Device in `devices`; returns how many were learned and how many were not
 * usable. Entries are added or replaced, never removed: a deleted device keeps an entry nobody will use, while
 * dropping entries would race with positions already in flight.
 */
export function learnDevices(session: Map<string, unknown>, devices: readonly unknown[]): { learned: number; skipped: number } {
  const map = knownDevices(session);
  let learned = 0;
  for (const device of devices) {
    if (!isRecord(device)) continue;
    const { id, uniqueId } = device;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || !usableUniqueId(uniqueId)) continue;
    map.set(id, uniqueId);
    learned += 1;
  }
  return { learned, skipped: devices.length - learned };
}

/** A uniqueId that can be an external device id: what a binding accepts (1..256 characters, no control characters, well-formed). */
function usableUniqueId(value: unknown): value is string {
  return externalIdSchema.safeParse(value).success;
}

const externalIdSchema = safeText(256);
