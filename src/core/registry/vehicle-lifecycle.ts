/**
 * A vehicle's end and its moves between workspaces. Deleting a vehicle takes its snapshot, history, charging
 * sessions, bindings, freshness state and events with it. Moving one takes its snapshot, history and charging
 * sessions to the other workspace, and only once its devices are unbound: a binding belongs to a connection of the
 * old workspace, and a move that quietly unbound them would stop the vehicle's data without anyone deciding it.
 *
 * Both lock the vehicle row first, as ingest does (after the policy, which neither needs): a batch writing the
 * vehicle finishes first, and one that comes after finds it gone.
 */
import { vehicleSubject } from '../events/catalogue.ts';
import { retryTransaction, sqlErrorIs, type Database, type Sql } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import { checkVinFree, vinTaken } from './vehicles.ts';

async function lockVehicle(tx: Sql, workspaceId: string, vehicleId: string): Promise<{ vin: string | null }> {
  const { rows } = await tx.query<{ vin: string | null }>('SELECT vin FROM vehicles WHERE workspace_id = $1 AND id = $2 FOR UPDATE', [workspaceId, vehicleId]);
  if (!rows[0]) throw notFound('vehicle', vehicleId);
  return rows[0];
}

/**
 * Deletes a vehicle and all it holds. Its events go too, so a replay of the workspace's log does not bring back a
 * vehicle that no longer exists; the rejections of updates that named it stay, as the record of what arrived.
 */
export async function deleteVehicle(db: Database, workspaceId: string, vehicleId: string): Promise<void> {
  await retryTransaction(() =>
    db.transaction(async (tx) => {
      await lockVehicle(tx, workspaceId, vehicleId);
      await tx.query('DELETE FROM signal_history WHERE workspace_id = $1 AND vehicle_id = $2', [workspaceId, vehicleId]);
      await tx.query('DELETE FROM events WHERE workspace_id = $1 AND subject = $2', [workspaceId, vehicleSubject(vehicleId)]);
      // Its snapshot, bindings, charging sessions and freshness state follow by their foreign keys.
      await tx.query('DELETE FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
    }),
  );
}

/**
 * Moves an unbound vehicle, with its snapshot, history and charging sessions, to workspace `to`; its VIN must be
 * free there. Its events stay in the old workspace's log, where they were told, until that workspace's event
 * retention; in the new one its events start afresh. Moving it to where it is changes nothing.
 */
export async function moveVehicle(db: Database, from: string, vehicleId: string, to: string): Promise<void> {
  await retryTransaction(() =>
    db.transaction(async (tx) => {
      const { vin } = await lockVehicle(tx, from, vehicleId);
      if (from === to) return;
      const target = await tx.query('SELECT 1 FROM workspaces WHERE id = $1', [to]);
      if (target.rowCount === 0) throw new DomainError('invalid', 'unknown_workspace', `workspace ${to} does not exist`);
      await refuseWhileBound(tx, from, vehicleId);
      await checkVinFree(tx, to, vehicleId, vin);
      await copyVehicleRow(tx, from, vehicleId, to);
      for (const table of ['signal_snapshot', 'signal_history', 'charging_sessions'] as const) {
        await tx.query(`UPDATE ${table} SET workspace_id = $3 WHERE workspace_id = $1 AND vehicle_id = $2`, [from, vehicleId, to]);
      }
      // The old row's freshness state goes with it (a foreign key): the sweeper meets the vehicle anew where it is now.
      await tx.query('DELETE FROM vehicles WHERE workspace_id = $1 AND id = $2', [from, vehicleId]);
    }),
  );
}

async function refuseWhileBound(tx: Sql, workspaceId: string, vehicleId: string): Promise<void> {
  const { rows } = await tx.query<{ connection_id: string; external_id: string }>(
    'SELECT connection_id, external_id FROM device_bindings WHERE workspace_id = $1 AND vehicle_id = $2 ORDER BY connection_id, external_id',
    [workspaceId, vehicleId],
  );
  if (rows.length === 0) return;
  const listed = rows.slice(0, 5).map((r) => `${r.connection_id}/${r.external_id}`).join(', ');
  throw new DomainError(
    'conflict',
    'vehicle_bound',
    `vehicle ${vehicleId} has ${rows.length} device binding${rows.length === 1 ? '' : 's'} on connections of its workspace (${listed}${rows.length > 5 ? ', ...' : ''}); unbind them before moving it, and bind its devices in the new workspace after`,
  );
}

/** The vehicle's row under its new workspace, beside the old one until that is deleted (the key leads with the workspace). */
async function copyVehicleRow(tx: Sql, from: string, vehicleId: string, to: string): Promise<void> {
  try {
    await tx.query(
      `INSERT INTO vehicles (workspace_id, id, name, vin, active, last_synced_at, last_observed_at, created_at)
       SELECT $3, id, name, vin, active, last_synced_at, last_observed_at, created_at
         FROM vehicles WHERE workspace_id = $1 AND id = $2`,
      [from, vehicleId, to],
    );
  } catch (error) {
    if (sqlErrorIs(error, 'unique_violation')) throw vinTaken('another vehicle of the workspace it moves to already has this VIN');
    throw error;
  }
}
