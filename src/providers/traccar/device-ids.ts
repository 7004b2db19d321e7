/**
 * The deviceId -> uniqueId map a connection learns, kept in the stream session. Positions and events name a
 * device by Traccar's numeric id; Fleetwire binds the uniqueId. The map is filled from GET /api/devices when a
 * socket opens and from every `{"devices":[...]}` frame after that.
 */
import { isRecord } from '../json-values.ts';
import { externalDeviceIdSchema } from '../../canonical/update.ts';

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
 * Learns the ids of every well-formed Device in `devices`: a numeric id and a uniqueId that can be an external
 * device id. Entries are added or replaced, never removed: a deleted device keeps an entry nobody will use, while
 * dropping entries would race with positions already in flight.
 */
export function learnDevices(session: Map<string, unknown>, devices: readonly unknown[]): void {
  const map = knownDevices(session);
  for (const device of devices) {
    if (!isRecord(device)) continue;
    const { id, uniqueId } = device;
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) continue;
    const usable = externalDeviceIdSchema.safeParse(uniqueId);
    if (usable.success) map.set(id, usable.data);
  }
}
