/**
 * The AsyncAPI 3 description (3.1.0) of the events Fleetwire sends, served at `/asyncapi.json`: one message per event
 * type (a CloudEvent whose `data` schema is the type's own, from event-schemas.ts), and the three ways they leave:
 * signed webhooks to a subscriber's URL, the workspace's server-sent event stream, and NATS JetStream subjects.
 * Written from Fleetwire's side: every operation is a `send`.
 */
import { z } from 'zod';
import { eventTypes, type EventType } from './catalogue.ts';
import { cloudEventSchema } from './event-schemas.ts';

/** A message's key in `components.messages`: the type without its prefix, dots as underscores. */
const messageKey = (type: EventType) => type.replace(/^fleetwire\./, '').replace(/\./g, '_');

function messages() {
  return Object.fromEntries(
    eventTypes.map((type) => {
      const payload = z.toJSONSchema(cloudEventSchema(type), { target: 'draft-7', unrepresentable: 'any' });
      delete (payload as { $schema?: string }).$schema;
      return [
        messageKey(type),
        {
          name: type,
          title: type,
          summary: cloudEventSchema(type).shape.data.description ?? type,
          contentType: 'application/cloudevents+json',
          payload,
        },
      ];
    }),
  );
}

export interface AsyncApiOptions {
  /** The API's public address as the caller reached it (the SSE channel's server). */
  httpHost: string;
  httpProtocol: 'http' | 'https';
  /** The subject prefix of NATS publishing (FLEETWIRE_NATS_SUBJECT_PREFIX); its default when publishing is off. */
  natsSubjectPrefix: string;
}

export function asyncApiDocument(options: AsyncApiOptions) {
  const keys = eventTypes.map(messageKey);
  const channelMessages = Object.fromEntries(keys.map((key) => [key, { $ref: `#/components/messages/${key}` }]));
  const workspaceId = { description: 'The workspace id' };
  return {
    asyncapi: '3.1.0',
    info: {
      title: 'Fleetwire events',
      version: '1',
      description:
        'What Fleetwire tells charge planning, dispatch and platform consumers, as CloudEvents 1.0 (JSON). Each event is ' +
        'written in the same transaction as the change that causes it, and is kept for the workspace policy\'s ' +
        '`eventRetentionDays`. Delivery is at least once and in order per subject: de-duplicate by `id`, order by ' +
        '`sequence` (per subject).',
      license: { name: 'Apache-2.0' },
    },
    defaultContentType: 'application/cloudevents+json',
    servers: {
      api: {
        host: options.httpHost,
        protocol: options.httpProtocol,
        description: "Fleetwire's API: the server-sent event stream (bearer: the workspace's API key or the admin token)",
        security: [{ $ref: '#/components/securitySchemes/bearer' }],
      },
      nats: {
        host: '{natsHost}',
        protocol: 'nats',
        description: 'The NATS deployment named by FLEETWIRE_NATS_URL (JetStream; publishing is off without it)',
        variables: { natsHost: { description: 'host:port of a NATS server', default: 'localhost:4222' } },
      },
    },
    channels: {
      webhook: {
        address: null,
        title: 'Webhook subscription',
        description:
          "POSTed to a subscription's URL (POST /v1/workspaces/{ws}/webhooks), one event per request, signed as the " +
          'Standard Webhooks specification says: `webhook-id` (the event id), `webhook-timestamp`, ' +
          '`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the subscription\'s secret. ' +
          'Any 2xx acknowledges; other answers and timeouts are retried with backoff; 410 ends the subscription.',
        messages: channelMessages,
      },
      workspaceEvents: {
        address: '/v1/workspaces/{workspaceId}/events',
        title: 'Server-sent events',
        description:
          "The workspace's events as text/event-stream: `id` is the event's log position (send it back as " +
          'Last-Event-ID to resume), `event` its type, `data` the CloudEvent. `?types=` filters by type.',
        servers: [{ $ref: '#/servers/api' }],
        parameters: { workspaceId },
        messages: channelMessages,
      },
      natsEvents: {
        address: `${options.natsSubjectPrefix}.{workspaceId}.{eventType}`,
        title: 'NATS JetStream subjects',
        description:
          'Every event, published with Nats-Msg-Id = the event id (JetStream de-duplicates a republish inside the ' +
          "stream's duplicate window). `eventType` is the full CloudEvents type, so it spans several subject tokens: " +
          `subscribe to \`${options.natsSubjectPrefix}.<workspace>.>\` or to one type's subject.`,
        servers: [{ $ref: '#/servers/nats' }],
        parameters: { workspaceId, eventType: { enum: [...eventTypes], description: 'The CloudEvents type' } },
        messages: channelMessages,
      },
    },
    operations: {
      sendWebhook: {
        action: 'send',
        channel: { $ref: '#/channels/webhook' },
        summary: "Deliver each event to each subscription whose types include it",
        messages: keys.map((key) => ({ $ref: `#/channels/webhook/messages/${key}` })),
      },
      sendWorkspaceEvents: {
        action: 'send',
        channel: { $ref: '#/channels/workspaceEvents' },
        summary: "Stream the workspace's events to a connected client",
        messages: keys.map((key) => ({ $ref: `#/channels/workspaceEvents/messages/${key}` })),
      },
      publishNatsEvents: {
        action: 'send',
        channel: { $ref: '#/channels/natsEvents' },
        summary: 'Publish every event to JetStream, acknowledged before it counts as published',
        messages: keys.map((key) => ({ $ref: `#/channels/natsEvents/messages/${key}` })),
      },
    },
    components: {
      messages: messages(),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
  };
}
