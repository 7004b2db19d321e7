/**
 * Ingest rejections: a workspace's own, and every workspace's (including unattributable ones) for an admin. Each
 * item is one cause within an hour, with its count and latest example (core/read/rejections.ts).
 */
import type { Database } from '../../db/database.ts';
import { listRejections } from '../../read/rejections.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import { page, rejectionQuery, rejectionSchema, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

export function registerRejectionRoutes(app: TypedApp, { db }: { db: Database }): void {
  app.get(
    '/v1/workspaces/:ws/rejections',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'Updates and readings the ingest handler rejected, newest first: one item per cause and hour, with its count and the latest offending update',
        tags: ['rejections'],
        params: wsParams,
        querystring: rejectionQuery,
        response: { 200: page(rejectionSchema), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return listRejections(db, [request.params.ws], request.query);
    },
  );

  app.get(
    '/v1/rejections',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Rejections across all workspaces, including updates that named no usable workspace (workspaceId null)',
        tags: ['rejections'],
        querystring: rejectionQuery,
        response: { 200: page(rejectionSchema), ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => listRejections(db, 'all', request.query),
  );
}
