/**
 * Workspaces wired to provider simulators, and the check every poll test ends with: the store holds exactly what
 * the simulator served for the bound devices, once each, with the values it served.
 */
import { expect } from 'vitest';
import type { Database } from '../../src/core/db/database.ts';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createVehicle } from '../../src/core/registry/vehicles.ts';
import type { GroundTruth, ServedReading } from '../../src/sim/ground-truth.ts';
import { servedKey } from '../../src/sim/ground-truth.ts';
import { sameServedValue, storedReadings } from './stored-readings.ts';

export interface SimulatedConnection {
  connectionId: string;
  /** External id -> vehicle id, for the bound devices. */
  vehicles: Map<string, string>;
}

export async function connectSimulator(
  db: Database,
  secretKey: Buffer,
  workspaceId: string,
  options: { provider: 'samsara' | 'geotab'; baseUrl: string; credentials: Record<string, unknown>; externalIds: readonly string[] },
): Promise<SimulatedConnection> {
  const connection = await createConnection(db, secretKey, workspaceId, {
    provider: options.provider,
    transport: 'poll',
    baseUrl: options.baseUrl,
    credentials: options.credentials,
  });
  const vehicles = new Map<string, string>();
  for (const externalId of options.externalIds) {
    const id = await createVehicle(db, workspaceId, { name: `${options.provider} ${externalId}`, devices: [{ connectionId: connection.id, externalId }] });
    vehicles.set(externalId, id);
  }
  return { connectionId: connection.id, vehicles };
}

/**
 * Nothing lost, nothing duplicated: every reading the simulator served for a bound device is stored once, with
 * its value (within the rounding of unit conversions), and nothing else is stored for the connection.
 */
export async function expectStoreMatchesGroundTruth(
  db: Database,
  workspaceId: string,
  connection: SimulatedConnection,
  groundTruth: GroundTruth,
  account: string,
): Promise<{ served: number; stored: number }> {
  const served = new Map<string, ServedReading>();
  for (const [key, reading] of groundTruth.unique(account)) if (connection.vehicles.has(reading.externalDeviceId)) served.set(key, reading);
  const stored = await storedReadings(db, workspaceId, connection.connectionId);
  const storedKeys = new Map(stored.map((r) => [servedKey(r), r]));
  const missing = [...served.keys()].filter((key) => !storedKeys.has(key));
  const extra = [...storedKeys.keys()].filter((key) => !served.has(key));
  expect(missing.slice(0, 5), `${missing.length} served readings are not stored`).toEqual([]);
  expect(extra.slice(0, 5), `${extra.length} stored readings were never served`).toEqual([]);
  expect(stored.length).toBe(storedKeys.size);
  const wrong = stored.filter((r) => !sameServedValue(r.value, served.get(servedKey(r))!.value));
  expect(wrong.slice(0, 3).map((r) => [r, served.get(servedKey(r))!.value]), 'values differ from what was served').toEqual([]);
  return { served: served.size, stored: stored.length };
}
