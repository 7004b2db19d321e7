/**
 * The contract between core and the stream runtime (core's internal stream API): the connections a stream
 * process may hold, leases on them, and the status it reports. Both sides build from these schemas, so neither
 * has to import the other.
 */
import { z } from 'zod';

export const holderSchema = z.string().min(1).max(200).regex(/^[\w.:@-]+$/, 'letters, digits and . : @ - _ only');

/** A connection a stream process has been granted: everything it needs to open it. Sent only with a lease. */
export const streamConnectionGrantSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  provider: z.string(),
  baseUrl: z.string(),
  credentials: z.record(z.string(), z.unknown()).describe('Decrypted, for the stream runtime only; never logged'),
  options: z.record(z.string(), z.unknown()).describe("The connection's settings that are not secret"),
  boundDevices: z.array(z.string()).describe('External ids bound to active vehicles on this connection'),
  revision: z.string().describe('Changes whenever anything needed to open the connection changes'),
});

export type StreamConnectionGrant = z.infer<typeof streamConnectionGrantSchema>;

/** A connection in the directory: one the asking process holds, or one nobody holds. No credentials. */
export const streamDirectoryEntrySchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  provider: z.string(),
  lease: z.object({ holder: z.string(), expiresAt: z.string() }).nullable(),
});

export type StreamDirectoryEntry = z.infer<typeof streamDirectoryEntrySchema>;

export const streamDirectoryQuerySchema = z
  .object({
    holder: holderSchema,
    /** The last id of the previous page. */
    after: z.uuid().optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(500),
  })
  .strict();

/** One page of the connections a stream process may hold: its own and the free ones, in id order. */
export const streamDirectoryPageSchema = z.object({
  items: z.array(streamDirectoryEntrySchema),
  /** Pass as `after` for the next page; null on the last. */
  nextCursor: z.string().nullable(),
  /** Every connection stream processes share (held by anyone or free): the fair share is this over the holders. */
  total: z.number().int(),
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

export const streamLeaseAnswerSchema = z.object({
  /** What the process holds now (asked for and free, or renewed), with what it needs to open each. */
  granted: z.array(streamConnectionGrantSchema),
  /** Asked for, but its stored credentials cannot be decrypted: not granted, and shown on the connection's health. */
  unreadable: z.array(z.string()),
  /** Asked for or released, but deleted (with its workspace, or on its own): the process closes it for good. */
  gone: z.array(z.string()),
  ttlSeconds: z.number(),
});

/** The header that names the stream process sending an ingest batch; core checks its leases against it. */
export const streamHolderHeader = 'fleetwire-stream-holder';

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
  deadLettered: count.default(0),
  lastErrorClass: z.string().max(64).nullable(),
  lastError: z.string().max(1000).nullable(),
  lastErrorAt: time,
  nextReconnectAt: time,
  /**
   * The sockets that carry one device each (one per VIN) and are not open, by the device's external id, with the
   * class of their last error (null while first connecting): those devices, not the connection, are down.
   */
  devicesDown: z.record(z.string().max(256), z.string().max(64).nullable()).default({}),
});

export type StreamStatus = z.infer<typeof streamStatusSchema>;

export const streamStatusReportSchema = z.object({ holder: holderSchema, connections: z.array(streamStatusSchema).max(10_000) }).strict();
