/**
 * Deleting a workspace: everything of the tenant goes in one transaction (registry, credentials, snapshot,
 * history in every partition, rejections, poll records, events, webhooks, keys, policy and cutover), and nothing
 * of it is kept.
 *
 * The workspace is first turned off, in a transaction of its own: from then on ingest refuses its updates, no
 * poll of it starts and no stream process is granted its connections, so nothing writes its history while it is
 * deleted. The delete then empties the big tables while holding nothing another tenant waits for, and takes the
 * tables ingest reads workspace state from only for its last few statements (see lockIngestState). A delete that
 * fails leaves the workspace off and whole, to be deleted again. Updates that arrive once it is gone are refused
 * `unknown_workspace`.
 */
import { retryTransaction, type Database, type Sql } from '../db/database.ts';
import { notFound } from '../errors.ts';
import { lockIngestState, setTelematicsEnabled } from './workspaces.ts';

/** What grows with a tenant's history, emptied first (its events follow). */
const bulkTables = [
  'signal_history',
  'shadow_readings',
  'parity_hours',
  'ingest_rejections',
  'poll_runs',
  'webhook_deliveries',
] as const;

/**
 * Every other table holding rows of a workspace (`workspace_id`), children before their parents, up to those that
 * ingest locks rows of. A table added with a `workspace_id` column belongs here or in `lockedTables`:
 * test/core/lifecycle.test.ts lists them from the catalog and fails until it is.
 */
const tenantTables = [
  'cutover_transitions',
  'backfill_jobs',
  'stream_connection_states',
  'connection_sync_marks',
  'connection_poll_states',
  'connection_health_states',
  'charging_sessions',
  'discovered_devices',
  'device_bindings',
  'vehicle_freshness_states',
  'signal_snapshot',
  'vehicles',
  'webhook_deliveries',
  'webhook_subscriptions',
  'events',
  'event_subjects',
  'workspace_poll_schedule',
  'workspace_scheduler_marks',
  'api_keys',
] as const;

/**
 * Deleted under the ingest-state lock, in this order: leases (every stream batch locks its connections' leases,
 * and the connections' delete would reach them), connections, then what a writer that was waiting on them may have
 * committed (a poll run claimed against a connection, a refusal of an update judged before the lock), cutover and
 * policy; the workspace row after them.
 */
const lockedTables = [
  'stream_leases',
  'provider_connections',
  'poll_runs',
  'ingest_rejections',
  'ingest_reading_counts',
  'cutover_states',
  'telematics_policies',
] as const;

export async function deleteWorkspace(db: Database, workspaceId: string): Promise<void> {
  if (!(await setTelematicsEnabled(db, workspaceId, false))) throw notFound('workspace', workspaceId);
  await retryTransaction(() => db.transaction((tx) => deleteTenantRows(tx, workspaceId)));
}

// Table names from the constant lists above, never from input.
const deleteRows = (tx: Sql, table: string, workspaceId: string) => tx.query(`DELETE FROM ${table} WHERE workspace_id = $1`, [workspaceId]);

async function deleteTenantRows(tx: Sql, workspaceId: string): Promise<void> {
  const { rowCount } = await tx.query('SELECT 1 FROM workspaces WHERE id = $1', [workspaceId]);
  if (rowCount === 0) throw notFound('workspace', workspaceId);
  for (const table of bulkTables) await deleteRows(tx, table, workspaceId);
  await tx.query('DELETE FROM events WHERE workspace_id = $1', [workspaceId]);
  for (const table of tenantTables) await deleteRows(tx, table, workspaceId);
  await lockIngestState(tx, ['telematics_policies', 'cutover_states', 'stream_leases']);
  for (const table of lockedTables) await deleteRows(tx, table, workspaceId);
  const deleted = await tx.query('DELETE FROM workspaces WHERE id = $1', [workspaceId]);
  // Another delete of it got there first.
  if (deleted.rowCount === 0) throw notFound('workspace', workspaceId);
}
