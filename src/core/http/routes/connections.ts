/** Provider connections: created and changed by an admin, listed for the workspace. Credentials go in only. */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { notFound } from '../../errors.ts';
import {
  createConnection,
  deleteConnection,
  findConnection,
  listConnections,
  updateConnection,
} from '../../registry/connections.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import { connectionChangesSchema, connectionSchema, idParam, newConnectionSchema, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

const connectionParams = z.object({ ws: idParam, connectionId: idParam });

export function registerConnectionRoutes(app: TypedApp, { db, secretKey }: { db: Database; secretKey: Buffer }): void {
  app.post(
    '/v1/workspaces/:ws/connections',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Connect a provider account (credentials are encrypted at rest and never returned)',
        tags: ['connections'],
        params: wsParams,
        body: newConnectionSchema,
        response: { 201: connectionSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => reply.code(201).send(await createConnection(db, secretKey, request.params.ws, request.body)),
  );

  app.get(
    '/v1/workspaces/:ws/connections',
    {
      config: { access: 'workspace' },
      schema: {
        summary: "The workspace's provider connections",
        tags: ['connections'],
        params: wsParams,
        response: { 200: z.object({ items: z.array(connectionSchema) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return { items: await listConnections(db, request.params.ws) };
    },
  );

  app.get(
    '/v1/workspaces/:ws/connections/:connectionId',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'One provider connection',
        tags: ['connections'],
        params: connectionParams,
        response: { 200: connectionSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const connection = await findConnection(db, request.params.ws, request.params.connectionId);
      if (!connection) throw notFound('connection', request.params.connectionId);
      return connection;
    },
  );

  app.patch(
    '/v1/workspaces/:ws/connections/:connectionId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Change a connection: label, base URL, enabled, or rotate its credentials',
        tags: ['connections'],
        params: connectionParams,
        body: connectionChangesSchema,
        response: { 200: connectionSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => updateConnection(db, secretKey, request.params.ws, request.params.connectionId, request.body),
  );

  app.delete(
    '/v1/workspaces/:ws/connections/:connectionId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Remove a connection and its device bindings (vehicles and their history stay)',
        tags: ['connections'],
        params: connectionParams,
        response: { 204: z.null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteConnection(db, request.params.ws, request.params.connectionId);
      return reply.code(204).send(null);
    },
  );
}
