/**
 * The contract between core and the stream runtime (core's internal stream API): the connections a stream
 * process may hold, leases on them, and the status it reports. Both sides build from these schemas, so neither
 * has to import the other.
 */
import { z } from 'zod';

export const holderSchema = z.string().min(1).max(200).regex(/^[\w.:@-]+$/, 'letters, digits and . : @ - _ only');

export const streamConnectionGrantSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  provider: z.string(),
  baseUrl: z.string(),
  credentials: z.record(z.string(), z.unknown()).describe('Decrypted, for the stream runtime only; never logged'),
  boundDevices: z.array(z.string()).describe('External ids bound to active vehicles on this connection'),
  revision: z.string().describe('Changes whenever anything needed to open the connection changes'),
  lease: z.object({ holder: z.string(), expiresAt: z.string() }).nullable(),
});

export type StreamConnectionGrant = z.infer<typeof streamConnectionGrantSchema>;

export const streamConnectionListSchema = z.object({
  items: z.array(streamConnectionGrantSchema),
  /** Stream processes that asked for leases within the lease time: the connections are shared among them. */
  holders: z.array(z.string()),
  leaseTtlSeconds: z.number(),
});

export const streamLeaseRequestSchema = z
  .object({
    holder: holderSchema,
    wanted: z.array(z.uuid()).max(10_000),
    release: z.array(z.uuid()).max(10_000).default([]),
    /** The process is stopping: it holds nothing more and should no longer count when connections are shared out. */
    leaving: z.boolean().default(false),
  })
  .strict();

export const streamLeaseAnswerSchema = z.object({ granted: z.array(z.string()), ttlSeconds: z.number() });

const time = z.string().nullable();
const count = z.number().int().min(0);

export const streamStatusSchema = z.object({
  connectionId: z.uuid(),
  connected: z.boolean(),
  sockets: count,
  socketsOpen: count,
  lastMessageAt: time,
  lastHeartbeatAt: time,
  connectedSince: time,
  reconnects: count,
  readingsIn: count,
  delivered: count,
  coalesced: count,
  dropped: count,
  buffered: count,
  badFrames: count,
  lastErrorClass: z.string().max(64).nullable(),
  lastError: z.string().max(1000).nullable(),
  lastErrorAt: time,
  nextReconnectAt: time,
});

export type StreamStatus = z.infer<typeof streamStatusSchema>;

export const streamStatusReportSchema = z.object({ holder: holderSchema, connections: z.array(streamStatusSchema).max(10_000) }).strict();
