/**
 * Webhook subscriptions (admin): made with a signing secret shown once, listed with their delivery health, paused
 * and resumed, replayed from a time, and their recent delivery attempts.
 */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { eventTypes } from '../../events/catalogue.ts';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, replayWebhook, updateWebhook } from '../../events/webhooks.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { problemResponses } from '../problem.ts';
import { idParam, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

const webhookParams = z.object({ ws: idParam, webhookId: idParam });
const typesSchema = z.array(z.string().max(100)).min(1).max(eventTypes.length * 2).describe(`Event types: ${eventTypes.join(', ')}`);
const description = z.string().max(500).regex(/^[^\p{Cc}]*$/u, 'must not hold control characters');

const webhookSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  url: z.string(),
  types: z.array(z.string()),
  description: z.string(),
  status: z.enum(['active', 'paused', 'ended']),
  statusReason: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  health: z.object({
    backlog: z.number().int(),
    oldestUndeliveredAgeSeconds: z.number().nullable(),
    lastSuccessAt: z.string().nullable(),
    lastError: z.object({ message: z.string(), at: z.string() }).nullable(),
    failingSince: z.string().nullable(),
    nextAttemptAt: z.string().nullable(),
    latencyMs: z.object({ p50: z.number(), p99: z.number() }).nullable(),
  }),
});

const deliverySchema = z.object({
  eventId: z.uuid(),
  eventType: z.string(),
  eventPosition: z.number().int(),
  attempt: z.number().int(),
  outcome: z.enum(['delivered', 'failed', 'gone']),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  durationMs: z.number(),
  latencyMs: z.number().nullable(),
  attemptedAt: z.string(),
});

export function registerWebhookRoutes(app: TypedApp, deps: { db: Database; secretKey: Buffer; allowPrivate: boolean; clock: () => number }): void {
  const { db } = deps;
  const options = { allowPrivate: deps.allowPrivate };

  app.post(
    '/v1/workspaces/:ws/webhooks',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Subscribe a URL to events; the answer holds the signing secret, shown this once',
        tags: ['webhooks'],
        params: wsParams,
        body: z.object({ url: z.string().max(2048), types: typesSchema, description: description.optional() }).strict(),
        response: { 201: webhookSchema.extend({ secret: z.string() }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => reply.code(201).header('cache-control', 'no-store').send(await createWebhook(db, deps.secretKey, request.params.ws, request.body, options)),
  );

  app.get(
    '/v1/workspaces/:ws/webhooks',
    {
      config: { access: 'admin' },
      schema: {
        summary: "The workspace's webhook subscriptions with their delivery health",
        tags: ['webhooks'],
        params: wsParams,
        response: { 200: z.object({ items: z.array(webhookSchema) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      await getWorkspace(db, request.params.ws);
      return { items: await listWebhooks(db, request.params.ws, deps.clock()) };
    },
  );

  app.get(
    '/v1/workspaces/:ws/webhooks/:webhookId',
    {
      config: { access: 'admin' },
      schema: { summary: 'One webhook subscription', tags: ['webhooks'], params: webhookParams, response: { 200: webhookSchema, ...problemResponses(400, 401, 403, 404) } },
    },
    async (request) => getWebhook(db, request.params.ws, request.params.webhookId, deps.clock()),
  );

  app.patch(
    '/v1/workspaces/:ws/webhooks/:webhookId',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Change a subscription: pause or resume it, its types, URL or description',
        tags: ['webhooks'],
        params: webhookParams,
        body: z
          .object({ url: z.string().max(2048).optional(), types: typesSchema.optional(), description: description.optional(), status: z.enum(['active', 'paused']).optional() })
          .strict(),
        response: { 200: webhookSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => updateWebhook(db, request.params.ws, request.params.webhookId, request.body, options),
  );

  app.delete(
    '/v1/workspaces/:ws/webhooks/:webhookId',
    {
      config: { access: 'admin' },
      schema: { summary: 'Remove a subscription', tags: ['webhooks'], params: webhookParams, response: { 204: z.null(), ...problemResponses(400, 401, 403, 404) } },
    },
    async (request, reply) => {
      await deleteWebhook(db, request.params.ws, request.params.webhookId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/workspaces/:ws/webhooks/:webhookId/replay',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Deliver again every kept event stored since `from` (receivers de-duplicate by webhook-id)',
        tags: ['webhooks'],
        params: webhookParams,
        body: z.object({ from: z.iso.datetime({ offset: true }) }).strict(),
        response: { 202: z.object({ cursor: z.number().int(), webhook: webhookSchema }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => reply.code(202).send(await replayWebhook(db, request.params.ws, request.params.webhookId, request.body.from)),
  );

  app.get(
    '/v1/workspaces/:ws/webhooks/:webhookId/deliveries',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Recent delivery attempts, newest first',
        tags: ['webhooks'],
        params: webhookParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }).strict(),
        response: { 200: z.object({ items: z.array(deliverySchema) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({ items: await listDeliveries(db, request.params.ws, request.params.webhookId, request.query.limit) }),
  );
}
