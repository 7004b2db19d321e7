/** Workspaces, their telematics policy and cutover, and their API keys (admin), plus a workspace's own view. */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../../registry/api-keys.ts';
import { deleteWorkspace } from '../../registry/workspace-deletion.ts';
import { changeCutover } from '../../cutover/cutover.ts';
import { loadParity } from '../../cutover/parity.ts';
import { listCutoverTransitions } from '../../cutover/transitions.ts';
import { createWorkspace, getWorkspace, listWorkspaces, putTelematicsPolicy, updateWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import {
  apiKeySchema,
  cutoverSchema,
  cutoverTransitionSchema,
  idParam,
  newApiKeySchema,
  newWorkspaceSchema,
  parityQuery,
  parityReportSchema,
  policySchema,
  workspaceChangesSchema,
  workspaceSchema,
  wsParams,
} from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

export function registerWorkspaceRoutes(app: TypedApp, { db, clock }: { db: Database; clock: () => number }): void {
  app.post(
    '/v1/workspaces',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a workspace (telematics enabled with the default policy, cutover core)',
        tags: ['workspaces'],
        body: newWorkspaceSchema,
        response: { 201: workspaceSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const workspace = await db.transaction((tx) => createWorkspace(tx, { name: request.body.name }));
      return reply.code(201).send(workspace);
    },
  );

  app.get(
    '/v1/workspaces',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List workspaces',
        tags: ['workspaces'],
        response: { 200: z.object({ items: z.array(workspaceSchema) }), ...problemResponses(401, 403) },
      },
    },
    async () => ({ items: await listWorkspaces(db) }),
  );

  app.get(
    '/v1/workspaces/:ws',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'One workspace with its policy and cutover',
        tags: ['workspaces'],
        params: wsParams,
        response: { 200: workspaceSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => getWorkspace(db, request.params.ws),
  );

  app.patch(
    '/v1/workspaces/:ws',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Rename a workspace, or turn its telematics off or on',
        description: 'Disabled: not polled, its stream connections not handed out, its updates refused (telematics_disabled), its health `disabled`.',
        tags: ['workspaces'],
        params: wsParams,
        body: workspaceChangesSchema,
        response: { 200: workspaceSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => updateWorkspace(db, request.params.ws, request.body),
  );

  app.delete(
    '/v1/workspaces/:ws',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a workspace and everything of it',
        description:
          'Vehicles, connections and their credentials, snapshot, history, charging sessions, rejections, poll runs, events, webhooks, API keys, policy and cutover, in one transaction. Nothing is kept.',
        tags: ['workspaces'],
        params: wsParams,
        response: { 204: z.null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteWorkspace(db, request.params.ws);
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/workspaces/:ws/telematics-policy',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Set the telematics policy',
        tags: ['workspaces'],
        params: wsParams,
        body: policySchema,
        response: { 200: workspaceSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => putTelematicsPolicy(db, request.params.ws, request.body),
  );

  app.put(
    '/v1/workspaces/:ws/cutover',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Set which poller owns the workspace: legacy, shadow (the legacy poller, with core polling beside it for parity) or core',
        description:
          'To core from another mode only when parity over the policy cutoverGate window meets its thresholds (409 parity_not_met with each shortfall in `reasons`), or with force and a reason. Every change is recorded (GET .../cutover/transitions) and is a fleetwire.workspace.cutover.changed event. Core to legacy (or shadow) is the rollback: the legacy poller is accepted at once, core poll runs already going still commit, and core runs one closing poll from its committed cursors, so nothing observed up to the rollback is lost.',
        tags: ['workspaces'],
        params: wsParams,
        body: cutoverSchema,
        response: { 200: workspaceSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => changeCutover(db, request.params.ws, request.body, 'admin token', clock()),
  );

  app.get(
    '/v1/workspaces/:ws/cutover/parity',
    {
      config: { access: 'workspace' },
      schema: {
        summary: "Parity of core's polling with the legacy poller's over the last hours (the current one included), and whether it meets the cutover gate",
        tags: ['workspaces'],
        params: wsParams,
        querystring: parityQuery,
        response: { 200: parityReportSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { policy } = await getWorkspace(db, request.params.ws);
      reply.header('cache-control', 'no-store');
      const window = request.query.window ?? policy.cutoverGate.windowHours;
      return db.transaction((tx) => loadParity(tx, request.params.ws, policy.cutoverGate, window, clock()));
    },
  );

  app.get(
    '/v1/workspaces/:ws/cutover/transitions',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'Every change of the workspace cutover, newest first: who, when, from, to, why, forced, and the parity it was judged on',
        tags: ['workspaces'],
        params: wsParams,
        response: { 200: z.object({ items: z.array(cutoverTransitionSchema) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return { items: await listCutoverTransitions(db, request.params.ws) };
    },
  );

  app.post(
    '/v1/workspaces/:ws/api-keys',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a read key for the workspace; the key is in this answer only',
        tags: ['api keys'],
        params: wsParams,
        body: newApiKeySchema.optional(),
        response: { 201: apiKeySchema.extend({ key: z.string() }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const key = await createApiKey(db, request.params.ws, request.body?.name ?? 'api key');
      return reply.code(201).header('cache-control', 'no-store').send(key);
    },
  );

  app.get(
    '/v1/workspaces/:ws/api-keys',
    {
      config: { access: 'admin' },
      schema: {
        summary: "List the workspace's keys (never the keys themselves)",
        tags: ['api keys'],
        params: wsParams,
        response: { 200: z.object({ items: z.array(apiKeySchema) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return { items: await listApiKeys(db, request.params.ws) };
    },
  );

  app.delete(
    '/v1/workspaces/:ws/api-keys/:keyId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Revoke a key',
        tags: ['api keys'],
        params: z.object({ ws: idParam, keyId: idParam }),
        response: { 204: z.null(), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await revokeApiKey(db, request.params.ws, request.params.keyId);
      return reply.code(204).send(null);
    },
  );
}
