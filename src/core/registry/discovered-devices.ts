/**
 * Discovered devices: what providers report that no vehicle of the workspace is bound to, kept by the ingest unit
 * of work (one row per connection and external id), and an operator's decisions about them: bind to a new or an
 * existing vehicle, ignore (dropped before ingest from then on, only counted), or take back an ignore.
 *
 * Binding goes through the registry's createVehicle / addVehicleDevices, so the checks of any other binding apply
 * (the VIN is free, the connection is the workspace's, the device is not bound elsewhere). Whether a device is bound
 * is read from device_bindings, so a binding made any other way shows here too.
 */
import { safeName } from '../../canonical/update.ts';
import type { Database, Sql } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import { decodeCursor, encodeCursor } from '../read/cursor.ts';
import { addVehicleDevices, createVehicle, type BindingOptions, type DeviceRef } from './vehicles.ts';

export const discoveredStatuses = ['pending', 'ignored', 'bound'] as const;
export type DiscoveredStatus = (typeof discoveredStatuses)[number];

export interface DiscoveredDevice {
  connectionId: string;
  provider: string;
  externalId: string;
  status: DiscoveredStatus;
  firstSeenAt: string;
  lastSeenAt: string;
  readingCount: number;
  /** Of `readingCount`, the readings dropped while the device was ignored. */
  ignoredCount: number;
  sample: Record<string, { value: unknown; observedAt: string }>;
  vehicleId: string | null;
}

/** A device's status as it is now: bound when a binding exists, whatever was decided here before. */
const effectiveStatus = `CASE WHEN b.vehicle_id IS NOT NULL THEN 'bound' WHEN d.status = 'ignored' THEN 'ignored' ELSE 'pending' END`;
const withBinding = `LEFT JOIN device_bindings b
         ON b.workspace_id = d.workspace_id AND b.connection_id = d.connection_id AND b.external_id = d.external_id`;

export interface DiscoveredQuery {
  status?: DiscoveredStatus | undefined;
  connectionId?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** A workspace's discovered devices of one status (default pending), most recently seen first. */
export async function listDiscoveredDevices(sql: Sql, workspaceId: string, query: DiscoveredQuery): Promise<{ items: DiscoveredDevice[]; nextCursor: string | null }> {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'uuid', 'text']);
  const { rows } = await sql.query<{
    connection_id: string;
    provider: string;
    external_id: string;
    status: DiscoveredStatus;
    first_seen_at: Date;
    last_seen_at: Date;
    reading_count: number;
    ignored_count: number;
    sample: DiscoveredDevice['sample'];
    vehicle_id: string | null;
  }>(
    `SELECT d.connection_id, d.provider, d.external_id, ${effectiveStatus} AS status, d.first_seen_at, d.last_seen_at,
            d.reading_count, d.ignored_count, d.sample, b.vehicle_id
       FROM discovered_devices d
       ${withBinding}
      WHERE d.workspace_id = $1
        AND ${effectiveStatus} = $2
        AND ($3::uuid IS NULL OR d.connection_id = $3)
        AND ($4::timestamptz IS NULL OR (d.last_seen_at, d.connection_id, d.external_id) < ($4, $5::uuid, $6::text))
      ORDER BY d.last_seen_at DESC, d.connection_id DESC, d.external_id DESC
      LIMIT $7`,
    [workspaceId, query.status ?? 'pending', query.connectionId ?? null, after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, query.limit + 1],
  );
  const items = rows.slice(0, query.limit).map((row) => ({
    connectionId: row.connection_id,
    provider: row.provider,
    externalId: row.external_id,
    status: row.status,
    firstSeenAt: row.first_seen_at.toISOString(),
    lastSeenAt: row.last_seen_at.toISOString(),
    readingCount: Number(row.reading_count),
    ignoredCount: Number(row.ignored_count),
    sample: row.sample,
    vehicleId: row.vehicle_id,
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.lastSeenAt, last.connectionId, last.externalId]) : null };
}

/** How many devices of each workspace wait for an operator's decision. */
export async function countPendingDiscovered(sql: Sql, workspaceIds: readonly string[] | 'all'): Promise<Map<string, number>> {
  const { rows } = await sql.query<{ workspace_id: string; n: number }>(
    `SELECT d.workspace_id, count(*)::int AS n
       FROM discovered_devices d
       ${withBinding}
      WHERE ($1::uuid[] IS NULL OR d.workspace_id = ANY($1::uuid[])) AND ${effectiveStatus} = 'pending'
      GROUP BY d.workspace_id`,
    [workspaceIds === 'all' ? null : workspaceIds],
  );
  return new Map(rows.map((row) => [row.workspace_id, row.n]));
}

const discoveredNotFound = (d: DeviceRef) =>
  new DomainError('not_found', 'discovered_device_not_found', `device ${d.externalId} has not been reported on connection ${d.connectionId} of this workspace`);

/** The device's row, locked until the transaction ends; with whether a binding exists. */
async function lockDiscovered(tx: Sql, workspaceId: string, device: DeviceRef): Promise<{ bound: boolean }> {
  const { rows } = await tx.query<{ bound: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM device_bindings b
                     WHERE b.workspace_id = d.workspace_id AND b.connection_id = d.connection_id AND b.external_id = d.external_id) AS bound
       FROM discovered_devices d
      WHERE d.workspace_id = $1 AND d.connection_id = $2 AND d.external_id = $3
        FOR UPDATE`,
    [workspaceId, device.connectionId, device.externalId],
  );
  if (!rows[0]) throw discoveredNotFound(device);
  return rows[0];
}

/** Records that these devices were bound to these vehicles (those that were discovered; others are left alone). */
export async function markDiscoveredBound(tx: Sql, workspaceId: string, bound: readonly (DeviceRef & { vehicleId: string })[]): Promise<void> {
  if (bound.length === 0) return;
  await tx.query(
    `UPDATE discovered_devices d SET status = 'bound', vehicle_id = k.vehicle_id, status_changed_at = now()
       FROM unnest($2::uuid[], $3::text[], $4::uuid[]) AS k(connection_id, external_id, vehicle_id)
      WHERE d.workspace_id = $1 AND d.connection_id = k.connection_id AND d.external_id = k.external_id`,
    [workspaceId, bound.map((b) => b.connectionId), bound.map((b) => b.externalId), bound.map((b) => b.vehicleId)],
  );
}

export interface BindRequest extends DeviceRef {
  vehicleId?: string | undefined;
  vehicle?: { name: string; vin?: string | null | undefined } | undefined;
}

/** Binds a discovered device to an existing vehicle or to a new one, in one transaction. */
export async function bindDiscoveredDevice(db: Database, workspaceId: string, request: BindRequest, binding: BindingOptions = {}): Promise<{ vehicleId: string; created: boolean }> {
  if ((request.vehicleId === undefined) === (request.vehicle === undefined)) {
    throw new DomainError('invalid', 'vehicle_or_vehicle_id', 'give exactly one of vehicleId (an existing vehicle) and vehicle (a new one)');
  }
  const device: DeviceRef = { connectionId: request.connectionId, externalId: request.externalId };
  return db.transaction(async (tx) => {
    await lockDiscovered(tx, workspaceId, device);
    let vehicleId: string;
    if (request.vehicleId !== undefined) {
      vehicleId = request.vehicleId;
      await addVehicleDevices(tx, workspaceId, vehicleId, [device], binding);
    } else {
      vehicleId = await createVehicle(tx, workspaceId, { name: request.vehicle!.name, vin: request.vehicle!.vin ?? null, devices: [device] }, binding);
    }
    await markDiscoveredBound(tx, workspaceId, [{ ...device, vehicleId }]);
    return { vehicleId, created: request.vehicleId === undefined };
  });
}

/**
 * Ignores a device (`ignored`: its updates are dropped before ingest and only counted) or takes that back
 * (`pending`). A bound device is neither: unbind it first.
 */
export async function setDiscoveredStatus(db: Database, workspaceId: string, device: DeviceRef, status: 'ignored' | 'pending'): Promise<void> {
  await db.transaction(async (tx) => {
    const { bound } = await lockDiscovered(tx, workspaceId, device);
    if (bound) {
      throw new DomainError('conflict', 'device_bound', `device ${device.externalId} on connection ${device.connectionId} is bound to a vehicle; unbind it first`);
    }
    await tx.query(
      `UPDATE discovered_devices SET status = $4, vehicle_id = NULL, status_changed_at = now()
        WHERE workspace_id = $1 AND connection_id = $2 AND external_id = $3`,
      [workspaceId, device.connectionId, device.externalId, status],
    );
  });
}

/** At most this many devices are bound by one bind-matching call; the answer says how many more match. */
export const bindMatchingLimit = 1000;
const vehicleName = safeName(200);

export interface BindMatchingRequest {
  connectionId: string;
  externalIdPrefix?: string | undefined;
  nameTemplate?: string | undefined;
  dryRun?: boolean | undefined;
}

export interface BindMatchingResult {
  bound: { externalId: string; vehicleId: string | null }[];
  skipped: { externalId: string; reason: string }[];
  /** Matching pending devices left for another call (past bindMatchingLimit). */
  remaining: number;
}

/**
 * One new vehicle per pending device of the connection whose external id starts with the prefix, named by the
 * template (`{externalId}`, `{provider}`). One transaction; a device that cannot be bound (its name is not a valid
 * name, it was bound meanwhile) is skipped with the reason and the others go on. A dry run answers the same lists,
 * with no vehicle ids, and writes nothing.
 */
export async function bindMatching(db: Database, workspaceId: string, request: BindMatchingRequest, binding: BindingOptions = {}): Promise<BindMatchingResult> {
  const template = request.nameTemplate ?? '{externalId}';
  return db.transaction(async (tx) => {
    const { rows: connection } = await tx.query('SELECT 1 FROM provider_connections WHERE workspace_id = $1 AND id = $2', [workspaceId, request.connectionId]);
    if (connection.length === 0) throw new DomainError('invalid', 'unknown_connection', `connection ${request.connectionId} does not exist in this workspace`);
    const { rows } = await tx.query<{ external_id: string; provider: string; total: number }>(
      `SELECT d.external_id, d.provider, count(*) OVER ()::int AS total
         FROM discovered_devices d
         ${withBinding}
        WHERE d.workspace_id = $1 AND d.connection_id = $2 AND ${effectiveStatus} = 'pending'
          AND ($3::text IS NULL OR starts_with(d.external_id, $3))
        ORDER BY d.external_id
        LIMIT $4`,
      [workspaceId, request.connectionId, request.externalIdPrefix ?? null, bindMatchingLimit],
    );
    const result: BindMatchingResult = { bound: [], skipped: [], remaining: Math.max(0, (rows[0]?.total ?? 0) - rows.length) };
    const marks: (DeviceRef & { vehicleId: string })[] = [];
    for (const row of rows) {
      const name = vehicleName.safeParse(template.replaceAll('{externalId}', row.external_id).replaceAll('{provider}', row.provider));
      if (!name.success) {
        result.skipped.push({ externalId: row.external_id, reason: 'invalid_name' });
        continue;
      }
      if (request.dryRun) {
        result.bound.push({ externalId: row.external_id, vehicleId: null });
        continue;
      }
      const device = { connectionId: request.connectionId, externalId: row.external_id };
      // A device that cannot be bound takes back only its own vehicle.
      await tx.query('SAVEPOINT bind_one');
      try {
        const vehicleId = await createVehicle(tx, workspaceId, { name: name.data, devices: [device] }, binding);
        await tx.query('RELEASE SAVEPOINT bind_one');
        result.bound.push({ externalId: row.external_id, vehicleId });
        marks.push({ ...device, vehicleId });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        await tx.query('ROLLBACK TO SAVEPOINT bind_one');
        result.skipped.push({ externalId: row.external_id, reason: error.code });
      }
    }
    await markDiscoveredBound(tx, workspaceId, marks);
    return result;
  });
}
