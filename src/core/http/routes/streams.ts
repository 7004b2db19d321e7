/**
 * Core's internal API for the stream runtime (service token): which stream connections exist (with credentials,
 * decrypted for the service only), leases that give each to one stream process, and the status those processes
 * report back.
 */
import { z } from 'zod';
import {
  streamConnectionListSchema,
  streamLeaseAnswerSchema,
  streamLeaseRequestSchema,
  streamStatusReportSchema,
} from '../../../canonical/stream-api.ts';
import type { Database } from '../../db/database.ts';
import { acquireStreamLeases, listStreamConnections, liveStreamHolders, recordStreamStatus } from '../../streams/stream-store.ts';
import { problemResponses } from '../problem.ts';
import type { TypedApp } from '../typed-app.ts';

/** A lease lives this long unless renewed; stream processes renew every few seconds. */
export const streamLeaseTtlSeconds = 30;
/** A connection whose last heartbeat is older than this does not count as live for its vehicles' sync clock. */
const liveWithinSeconds = 90;

export function registerStreamRoutes(app: TypedApp, deps: { db: Database; secretKey: Buffer }): void {
  app.get(
    '/internal/v1/stream-connections',
    {
      config: { access: 'service' },
      schema: {
        summary: 'The stream connections to hold: provider, base URL, credentials, bound devices, current lease',
        tags: ['internal'],
        response: { 200: streamConnectionListSchema, ...problemResponses(401, 403) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return {
        items: await listStreamConnections(deps.db, deps.secretKey),
        holders: await liveStreamHolders(deps.db, streamLeaseTtlSeconds),
        leaseTtlSeconds: streamLeaseTtlSeconds,
      };
    },
  );

  app.post(
    '/internal/v1/stream-leases',
    {
      config: { access: 'service' },
      schema: {
        summary: 'Acquire or renew leases on stream connections for one stream process, and release others',
        tags: ['internal'],
        body: streamLeaseRequestSchema,
        response: { 200: streamLeaseAnswerSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { holder, wanted, release, leaving } = request.body;
      const granted = await acquireStreamLeases(deps.db, holder, wanted, release, streamLeaseTtlSeconds, leaving);
      return { granted, ttlSeconds: streamLeaseTtlSeconds };
    },
  );

  app.post(
    '/internal/v1/stream-status',
    {
      config: { access: 'service' },
      schema: {
        summary: "A stream process's report on the connections it holds: connected, last message and heartbeat, counters",
        tags: ['internal'],
        body: streamStatusReportSchema,
        response: { 200: z.object({ recorded: z.number().int() }), ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => ({
      recorded: await recordStreamStatus(deps.db, request.body.holder, request.body.connections, liveWithinSeconds),
    }),
  );
}
