/** Vehicles: registered by an admin with their devices; read with their snapshot and history. */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { listChargingSessions } from '../../read/charging-sessions.ts';
import { readBucketedHistory, readHistory } from '../../read/history.ts';
import { loadConnectionHealth } from '../../health/health-queries.ts';
import { silentReason, staleReason } from '../../health/rules.ts';
import { connectionVerdicts, loadVehicleReasons } from '../../health/vehicle-reasons.ts';
import { getVehicle, listVehicles, type VehicleView } from '../../read/vehicles.ts';
import { deleteVehicle, moveVehicle } from '../../registry/vehicle-lifecycle.ts';
import { addVehicleDevices, createVehicle, removeVehicleDevice, updateVehicle } from '../../registry/vehicles.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import {
  deviceRefSchema,
  chargingSessionItemSchema,
  chargingSessionQuery,
  historyBucketItemSchema,
  historyItemSchema,
  historyQuery,
  idParam,
  newVehicleSchema,
  page,
  vehicleChangesSchema,
  vehicleListQuery,
  vehicleMoveSchema,
  vehicleParams,
  vehicleSchema,
  wsParams,
} from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

/**
 * Why each vehicle that is behind is behind. `reason`, as before: a stale one by its connections, a silent one by what
 * it last said. `statusReason`: the closed set of health/vehicle-reasons.ts, for every vehicle that is not fresh, in
 * one statement for the page from its connections' health.
 */
async function explainStale(db: Database, workspaceId: string, vehicles: VehicleView[], now: number): Promise<void> {
  for (const vehicle of vehicles) if (vehicle.freshness.status === 'silent') vehicle.freshness.reason = silentReason(vehicle.signals);
  const behind = vehicles.filter((v) => v.freshness.status !== 'fresh');
  if (behind.length === 0) return;
  const connections = (await loadConnectionHealth(db, [workspaceId], now)).get(workspaceId) ?? [];
  const health = new Map(connections.map((c) => [c.id, c]));
  for (const vehicle of behind) {
    if (vehicle.freshness.status === 'stale') vehicle.freshness.reason = staleReason([...new Set(vehicle.devices.map((d) => d.connectionId))], health);
  }
  const verdicts = connectionVerdicts([connections]);
  const reasons = await loadVehicleReasons(db, workspaceId, behind.map((v) => ({ id: v.id, status: v.freshness.status })), verdicts);
  for (const vehicle of behind) vehicle.freshness.statusReason = reasons.get(vehicle.id) ?? null;
}

export function registerVehicleRoutes(
  app: TypedApp,
  { db, clock, backfillLookbackMs }: { db: Database; clock: () => number; backfillLookbackMs?: number | undefined },
): void {
  // Binding a device enqueues its backfill (registry/vehicles.ts) from this long before the binding.
  const binding = { backfillLookbackMs };
  app.post(
    '/v1/workspaces/:ws/vehicles',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Register a vehicle and bind its provider devices',
        tags: ['vehicles'],
        params: wsParams,
        body: newVehicleSchema,
        response: { 201: vehicleSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { ws } = request.params;
      const vehicle = await db.transaction(async (tx) => getVehicle(tx, ws, await createVehicle(tx, ws, request.body, binding)));
      return reply.code(201).send(vehicle);
    },
  );

  app.get(
    '/v1/workspaces/:ws/vehicles',
    {
      config: { access: 'workspace' },
      // Pages run to thousands of readings: the handler's return type already matches the schema (checked at
      // compile time), so the answer is serialized without validating every vehicle again.
      serializerCompiler: () => (data) => JSON.stringify(data),
      schema: {
        summary: 'Vehicles with their snapshot, by name',
        tags: ['vehicles'],
        params: wsParams,
        querystring: vehicleListQuery,
        response: { 200: page(vehicleSchema), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      const now = clock();
      const page = await listVehicles(db, request.params.ws, request.query, now);
      await explainStale(db, request.params.ws, page.items, now);
      return page;
    },
  );

  app.get(
    '/v1/workspaces/:ws/vehicles/:vehicleId',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'One vehicle with its snapshot',
        tags: ['vehicles'],
        params: vehicleParams,
        response: { 200: vehicleSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const now = clock();
      const vehicle = await getVehicle(db, request.params.ws, request.params.vehicleId, now);
      await explainStale(db, request.params.ws, [vehicle], now);
      return vehicle;
    },
  );

  app.patch(
    '/v1/workspaces/:ws/vehicles/:vehicleId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Rename, (de)activate or re-VIN a vehicle; an inactive vehicle accepts no updates; a VIN is unique in the workspace',
        tags: ['vehicles'],
        params: vehicleParams,
        body: vehicleChangesSchema,
        response: { 200: vehicleSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { ws, vehicleId } = request.params;
      return db.transaction(async (tx) => {
        await updateVehicle(tx, ws, vehicleId, request.body);
        return getVehicle(tx, ws, vehicleId);
      });
    },
  );

  app.delete(
    '/v1/workspaces/:ws/vehicles/:vehicleId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a vehicle with its snapshot, history, charging sessions, device bindings and events',
        tags: ['vehicles'],
        params: vehicleParams,
        response: { 204: z.null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteVehicle(db, request.params.ws, request.params.vehicleId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/workspaces/:ws/vehicles/:vehicleId/move',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Move an unbound vehicle, with its snapshot, history and charging sessions, to another workspace',
        description: 'Refused while devices are bound to it (409 vehicle_bound): they belong to connections of its workspace. Answers the vehicle where it is now.',
        tags: ['vehicles'],
        params: vehicleParams,
        body: vehicleMoveSchema,
        response: { 200: vehicleSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { ws, vehicleId } = request.params;
      await moveVehicle(db, ws, vehicleId, request.body.workspaceId);
      return getVehicle(db, request.body.workspaceId, vehicleId, clock());
    },
  );

  app.post(
    '/v1/workspaces/:ws/vehicles/:vehicleId/devices',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Bind more provider devices to a vehicle',
        tags: ['vehicles'],
        params: vehicleParams,
        body: z.object({ devices: z.array(deviceRefSchema).min(1).max(50) }).strict(),
        response: { 200: vehicleSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { ws, vehicleId } = request.params;
      return db.transaction(async (tx) => {
        await addVehicleDevices(tx, ws, vehicleId, request.body.devices, binding);
        return getVehicle(tx, ws, vehicleId);
      });
    },
  );

  app.delete(
    '/v1/workspaces/:ws/vehicles/:vehicleId/devices/:connectionId/:externalId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Unbind a provider device from a vehicle',
        tags: ['vehicles'],
        params: vehicleParams.extend({ connectionId: idParam, externalId: z.string().min(1).max(256) }),
        response: { 204: z.null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { ws, vehicleId, connectionId, externalId } = request.params;
      await removeVehicleDevice(db, ws, vehicleId, { connectionId, externalId });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/workspaces/:ws/vehicles/:vehicleId/history',
    {
      config: { access: 'workspace' },
      serializerCompiler: () => (data) => JSON.stringify(data),
      schema: {
        summary: "A vehicle's readings in observed-time order, optionally one signal and a time range [from, to); or, with `bucket`, downsampled",
        description:
          'With `bucket` (5m, 15m, 1h) each item is one signal in one bucket: count, first and last observed time, min, max and mean for numbers, the last value always; `from` is required, `to` defaults to now, at most 2,016 buckets per signal (400 too_many_buckets).',
        tags: ['vehicles'],
        params: vehicleParams,
        querystring: historyQuery,
        response: { 200: z.union([page(historyItemSchema), page(historyBucketItemSchema)]), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { ws, vehicleId } = request.params;
      const { bucket, ...query } = request.query;
      return bucket === undefined ? readHistory(db, ws, vehicleId, query) : readBucketedHistory(db, ws, vehicleId, { ...query, bucket }, clock());
    },
  );

  app.get(
    '/v1/workspaces/:ws/vehicles/:vehicleId/charging-sessions',
    {
      config: { access: 'workspace' },
      schema: {
        summary: "A vehicle's charging sessions as its providers reported them (start and end SoC, energy, peak power), newest first",
        tags: ['vehicles'],
        params: vehicleParams,
        querystring: chargingSessionQuery,
        response: { 200: page(chargingSessionItemSchema), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => listChargingSessions(db, request.params.ws, request.params.vehicleId, request.query),
  );
}
