/**
 * Core's internal API for the stream runtime (service token): the directory of stream connections a process may
 * hold (its own and the free ones, paged, without credentials), leases that give each connection to one stream
 * process (the answer carries what it needs to open them, credentials decrypted for the service only), and the
 * status those processes report back.
 */
import { z } from 'zod';
import {
  streamDirectoryPageSchema,
  streamDirectoryQuerySchema,
  streamLeaseAnswerSchema,
  streamLeaseRequestSchema,
  streamStatusReportSchema,
} from '../../../canonical/stream-api.ts';
import type { Database } from '../../db/database.ts';
import { acquireStreamLeases, listStreamDirectory, liveStreamHolders, recordStreamStatus } from '../../streams/stream-store.ts';
import { problemResponses } from '../problem.ts';
import type { TypedApp } from '../typed-app.ts';

/** A connection whose last heartbeat is older than this does not count as live for its vehicles' sync clock. */
const liveWithinSeconds = 90;

export function registerStreamRoutes(app: TypedApp, deps: { db: Database; secretKey: Buffer; leaseTtlSeconds: number }): void {
  const ttl = deps.leaseTtlSeconds;

  app.get(
    '/internal/v1/stream-connections',
    {
      config: { access: 'service' },
      schema: {
        summary: 'The stream connections a stream process may hold: its own and the free ones, paged, without credentials',
        tags: ['internal'],
        querystring: streamDirectoryQuerySchema,
        response: { 200: streamDirectoryPageSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const page = await listStreamDirectory(deps.db, request.query);
      return { ...page, holders: await liveStreamHolders(deps.db, ttl), leaseTtlSeconds: ttl };
    },
  );

  app.post(
    '/internal/v1/stream-leases',
    {
      config: { access: 'service' },
      schema: {
        summary: 'Acquire or renew leases on stream connections for one stream process, and release others',
        description: 'Answers the connections the process holds now, each with its base URL, credentials and bound devices.',
        tags: ['internal'],
        body: streamLeaseRequestSchema,
        response: { 200: streamLeaseAnswerSchema, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => ({ ...(await acquireStreamLeases(deps.db, deps.secretKey, request.body, ttl)), ttlSeconds: ttl }),
  );

  app.post(
    '/internal/v1/stream-status',
    {
      config: { access: 'service' },
      schema: {
        summary: "A stream process's report on the connections it holds: connected, last message and heartbeat, counters",
        description: 'Reports on connections the process holds no live lease on are ignored; `recorded` counts the others.',
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
