/**
 * Vehicles and their device bindings: which provider device (an external id on one connection) reports for which
 * vehicle. The ingest handler resolves every update through these bindings.
 */
import { randomUUID } from 'node:crypto';
import { defaultBackfillLookbackHours } from '../../config.ts';
import { historyAdapters } from '../../providers/registry.ts';
import { enqueueBindBackfills } from '../backfill/backfill-store.ts';
import { sqlErrorIs, type Sql } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';

export interface DeviceRef {
  connectionId: string;
  externalId: string;
}

export interface NewVehicle {
  name: string;
  vin?: string | null | undefined;
  active?: boolean | undefined;
  devices?: DeviceRef[] | undefined;
}

/** How a binding is followed up: its device is backfilled from this long before the binding (0: not at all). */
export interface BindingOptions {
  backfillLookbackMs?: number | undefined;
}

const defaultLookbackMs = defaultBackfillLookbackHours * 3600_000;
const historyWindowOf = (provider: string) => historyAdapters.get(provider)?.windowMs;

async function bindDevices(sql: Sql, workspaceId: string, vehicleId: string, devices: DeviceRef[], binding: BindingOptions): Promise<void> {
  if (devices.length === 0) return;
  const connectionIds = [...new Set(devices.map((d) => d.connectionId))];
  const { rows } = await sql.query<{ id: string }>(
    'SELECT id FROM provider_connections WHERE workspace_id = $1 AND id = ANY($2::uuid[])',
    [workspaceId, connectionIds],
  );
  const found = new Set(rows.map((row) => row.id));
  const missing = connectionIds.filter((id) => !found.has(id));
  if (missing.length > 0) {
    throw new DomainError('invalid', 'unknown_connection', `connection ${missing.join(', ')} does not exist in this workspace`);
  }
  const { rows: taken } = await sql.query<{ connection_id: string; external_id: string; vehicle_id: string }>(
    `SELECT d.connection_id, d.external_id, d.vehicle_id
       FROM device_bindings d
       JOIN unnest($2::uuid[], $3::text[]) AS k(connection_id, external_id)
         ON d.connection_id = k.connection_id AND d.external_id = k.external_id
      WHERE d.workspace_id = $1`,
    [workspaceId, devices.map((d) => d.connectionId), devices.map((d) => d.externalId)],
  );
  const elsewhere = taken.filter((row) => row.vehicle_id !== vehicleId);
  if (elsewhere.length > 0) {
    const first = elsewhere[0]!;
    throw new DomainError(
      'conflict',
      'device_already_bound',
      `device ${first.external_id} on connection ${first.connection_id} is already bound to vehicle ${first.vehicle_id}`,
    );
  }
  const { rows: bound } = await sql.query<{ connection_id: string; external_id: string }>(
    `INSERT INTO device_bindings (workspace_id, connection_id, external_id, vehicle_id)
     SELECT $1, k.connection_id, k.external_id, $4
       FROM unnest($2::uuid[], $3::text[]) AS k(connection_id, external_id)
     ON CONFLICT (workspace_id, connection_id, external_id) DO NOTHING
     RETURNING connection_id, external_id`,
    [workspaceId, devices.map((d) => d.connectionId), devices.map((d) => d.externalId), vehicleId],
  );
  // The provider's feed has moved past what a newly bound device sent before: a backfill job, in this transaction,
  // fetches it (src/core/backfill/). A device bound already to this vehicle is not new.
  const added = bound.map((row) => ({ connectionId: row.connection_id, externalId: row.external_id }));
  await enqueueBindBackfills(sql, workspaceId, added, binding.backfillLookbackMs ?? defaultLookbackMs, historyWindowOf);
}

// The VIN itself stays out of answers and logs, like a credential: it identifies a vehicle, and so its owner.
export const vinTaken = (detail: string) => new DomainError('conflict', 'vin_taken', detail);

/**
 * Refuses a VIN another vehicle of the workspace already has, comparing as the unique index does (without case or
 * surrounding spaces). Asked before writing, so the answer can name that vehicle: a unique violation would abort
 * the caller's transaction. The index still decides a race between two writers.
 */
export async function checkVinFree(sql: Sql, workspaceId: string, vehicleId: string, vin: string | null | undefined): Promise<void> {
  if (vin === null || vin === undefined) return;
  const { rows } = await sql.query<{ id: string }>(
    'SELECT id FROM vehicles WHERE workspace_id = $1 AND vin IS NOT NULL AND upper(btrim(vin)) = upper(btrim($2)) AND id <> $3 LIMIT 1',
    [workspaceId, vin, vehicleId],
  );
  if (rows[0]) throw vinTaken(`vehicle ${rows[0].id} of this workspace already has this VIN`);
}

export async function createVehicle(sql: Sql, workspaceId: string, input: NewVehicle, binding: BindingOptions = {}): Promise<string> {
  const id = randomUUID();
  await checkVinFree(sql, workspaceId, id, input.vin);
  try {
    const { rowCount } = await sql.query(
      `INSERT INTO vehicles (workspace_id, id, name, vin, active)
       SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)`,
      [workspaceId, id, input.name, input.vin ?? null, input.active ?? true],
    );
    if (rowCount === 0) throw notFound('workspace', workspaceId);
  } catch (error) {
    if (sqlErrorIs(error, 'unique_violation')) throw vinTaken('another vehicle of this workspace already has this VIN');
    throw error;
  }
  await bindDevices(sql, workspaceId, id, input.devices ?? [], binding);
  return id;
}

export async function updateVehicle(
  sql: Sql,
  workspaceId: string,
  vehicleId: string,
  changes: { name?: string | undefined; active?: boolean | undefined; vin?: string | null | undefined },
): Promise<void> {
  if (changes.vin !== undefined && changes.vin !== null) {
    // A vehicle that does not exist is not found, whatever VIN it was asked to take.
    const { rowCount } = await sql.query('SELECT 1 FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
    if (rowCount === 0) throw notFound('vehicle', vehicleId);
    await checkVinFree(sql, workspaceId, vehicleId, changes.vin);
  }
  try {
    const { rowCount } = await sql.query(
      `UPDATE vehicles
          SET name = COALESCE($3, name), active = COALESCE($4, active),
              vin = CASE WHEN $5::boolean THEN $6 ELSE vin END
        WHERE workspace_id = $1 AND id = $2`,
      [workspaceId, vehicleId, changes.name ?? null, changes.active ?? null, changes.vin !== undefined, changes.vin ?? null],
    );
    if (rowCount === 0) throw notFound('vehicle', vehicleId);
  } catch (error) {
    if (sqlErrorIs(error, 'unique_violation')) throw vinTaken('another vehicle of this workspace already has this VIN');
    throw error;
  }
}

export async function addVehicleDevices(sql: Sql, workspaceId: string, vehicleId: string, devices: DeviceRef[], binding: BindingOptions = {}): Promise<void> {
  const { rowCount } = await sql.query('SELECT 1 FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
  if (rowCount === 0) throw notFound('vehicle', vehicleId);
  await bindDevices(sql, workspaceId, vehicleId, devices, binding);
}

export async function removeVehicleDevice(sql: Sql, workspaceId: string, vehicleId: string, device: DeviceRef): Promise<void> {
  const { rowCount } = await sql.query(
    `DELETE FROM device_bindings
      WHERE workspace_id = $1 AND vehicle_id = $2 AND connection_id = $3 AND external_id = $4`,
    [workspaceId, vehicleId, device.connectionId, device.externalId],
  );
  if (rowCount === 0) throw notFound('device_binding', `${device.connectionId}/${device.externalId}`);
}
