/**
 * The request and response schemas of core's HTTP API. Route handlers get their types from these, the
 * validator checks requests against them, and /openapi.json publishes them.
 */
import { z } from 'zod';
import { externalDeviceIdSchema, safeName, safeText, timestampSchema } from '../../canonical/update.ts';
import { vehicleStatuses, connectionStatuses, workspaceStatuses } from '../health/rules.ts';
import { vehicleReasonCodes } from '../health/vehicle-reasons.ts';
import { rejectionReasons, readingStatuses, updateStatuses } from '../ingest/reasons.ts';
import { cutoverModes } from '../registry/workspaces.ts';

export const idParam = z.uuid().describe('A resource id (UUID)');
export const wsParams = z.object({ ws: idParam });
export const vehicleParams = z.object({ ws: idParam, vehicleId: idParam });

const nullableTime = z.string().nullable();

export const cutoverGateSchema = z
  .object({
    windowHours: z.number().int().min(1).max(168).describe('Parity is judged over this many of the last hours, the current one included'),
    minCoveragePct: z.number().min(0).max(100).describe("Of the legacy poller's readings, the share core's polling must also have"),
    minAgreementPct: z.number().min(0).max(100).describe('Of the readings both have, the share whose values must agree within the signal tolerance'),
    matchSeconds: z.number().int().min(0).max(3600).describe('Two readings of one vehicle and signal observed this close are one reading'),
  })
  .strict();

export const policySchema = z
  .object({
    enabled: z.boolean(),
    pollIntervalSeconds: z.number().int().min(10).max(86_400),
    freshnessThresholdSeconds: z.number().int().min(10).max(604_800),
    silentAfterSeconds: z.number().int().min(10).max(31_536_000),
    retentionDays: z.number().int().min(1).max(3650),
    socThresholdsPct: z
      .array(z.number().gt(0).lt(100))
      .max(10)
      .optional()
      .describe('SoC levels whose crossing, up or down, is a fleetwire.vehicle.soc.crossed event; default [20, 80]'),
    eventRetentionDays: z.number().int().min(1).max(90).optional().describe('How long events are kept for replay; default 7'),
    cutoverGate: cutoverGateSchema.optional().describe('When the workspace may go from shadow to core; defaults 24 h, 99 %, 99 %, 10 s'),
  })
  .strict();

export const workspaceSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  createdAt: z.string(),
  policy: policySchema.extend({ socThresholdsPct: z.array(z.number()), eventRetentionDays: z.number().int(), cutoverGate: cutoverGateSchema, updatedAt: z.string() }),
  cutover: z.object({ mode: z.enum(cutoverModes), changedAt: z.string() }),
});

export const newWorkspaceSchema = z.object({ name: safeName(200) }).strict();

export const workspaceChangesSchema = z
  .object({
    name: safeName(200).optional(),
    enabled: z
      .boolean()
      .optional()
      .describe("The policy's `enabled`: a disabled workspace is not polled, its stream connections are not handed out, its updates are refused"),
  })
  .strict();

export const cutoverSchema = z
  .object({
    mode: z.enum(cutoverModes),
    reason: safeText(500).optional().describe('Why: recorded with the transition; required with force'),
    force: z.boolean().optional().describe('Go to core from shadow even though parity does not meet the gate (with a reason)'),
    actor: safeName(200).optional().describe('Who asks, as recorded with the transition; the admin token when absent'),
  })
  .strict();

const parityFigures = {
  legacyReadings: z.number().int(),
  coreReadings: z.number().int(),
  pairs: z.number().int().describe('Readings both sides have: one of each, observed within the gate matchSeconds'),
  agreed: z.number().int(),
  missingInCore: z.number().int().describe("The legacy poller's readings core's polling lacks"),
  missingInLegacy: z.number().int(),
  coveragePct: z.number().nullable().describe("Of the legacy poller's readings, the share core also has"),
  agreementPct: z.number().nullable().describe('Of the pairs, the share whose values agree within the signal tolerance'),
};
const sideFreshness = z.object({ meanLagSeconds: z.number().nullable().describe('Mean of received minus observed'), newestObservedAt: z.string().nullable() });

export const parityQuery = z
  .object({
    window: z
      .string()
      .regex(/^[1-9][0-9]{0,2}h$/, 'hours, as 24h')
      .transform((text) => Number(text.slice(0, -1)))
      .pipe(z.number().int().min(1).max(168))
      .optional()
      .describe('How many of the last hours (the current one included), as 24h (1h to 168h); the policy cutoverGate window when absent'),
  })
  .strict();

export const parityReportSchema = z.object({
  workspaceId: z.uuid(),
  window: z.object({ hours: z.number().int(), from: z.string(), to: z.string() }),
  summary: z.object({ ...parityFigures, freshness: z.object({ core: sideFreshness, legacy: sideFreshness }) }),
  bySignal: z.array(z.object({ signal: z.string(), ...parityFigures })),
  worstVehicles: z.array(z.object({ vehicleId: z.uuid(), vehicleName: z.string(), worstSignal: z.string(), ...parityFigures })),
  differences: z.array(
    z.object({
      vehicleId: z.uuid(),
      vehicleName: z.string(),
      signal: z.string(),
      kind: z.enum(['disagreement', 'missing_in_core', 'missing_in_legacy']),
      observedAt: z.string(),
      core: z.unknown().optional(),
      legacy: z.unknown().optional(),
    }),
  ),
  gate: z.object({ minCoveragePct: z.number(), minAgreementPct: z.number(), met: z.boolean(), reasons: z.array(z.string()) }),
});

export const cutoverTransitionSchema = z.object({
  id: z.uuid(),
  at: z.string(),
  actor: z.string(),
  from: z.enum(cutoverModes),
  to: z.enum(cutoverModes),
  reason: z.string().nullable(),
  forced: z.boolean(),
  parity: z.unknown().describe('The parity a change to core was judged on; null for the others'),
});

export const pollStateSchema = z
  .object({
    lastAttemptAt: nullableTime,
    lastSuccessAt: nullableTime,
    lastErrorAt: nullableTime,
    lastErrorClass: z.string().nullable(),
    lastErrorMessage: z.string().nullable(),
    consecutiveFailures: z.number().int(),
    nextPollAt: nullableTime,
    rateLimitedUntil: nullableTime,
    authFailedAt: nullableTime,
  })
  .nullable();

export const streamStateSchema = z
  .object({
    holder: z.string(),
    connected: z.boolean(),
    sockets: z.number().int(),
    socketsOpen: z.number().int(),
    lastMessageAt: nullableTime,
    lastHeartbeatAt: nullableTime,
    connectedSince: nullableTime,
    reconnects: z.number(),
    readingsIn: z.number(),
    delivered: z.number(),
    coalesced: z.number(),
    dropped: z.number(),
    buffered: z.number(),
    badFrames: z.number(),
    deadLettered: z.number(),
    lastErrorClass: z.string().nullable(),
    lastError: z.string().nullable(),
    lastErrorAt: nullableTime,
    nextReconnectAt: nullableTime,
    reportedAt: z.string(),
  })
  .nullable();

export const connectionSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  provider: z.string(),
  transport: z.enum(['poll', 'stream']),
  label: z.string(),
  baseUrl: z.string(),
  enabled: z.boolean(),
  options: z.record(z.string(), z.unknown()).describe("Settings that are not secret, as the provider defines them (docs/PROVIDERS.md)"),
  createdAt: z.string(),
  updatedAt: z.string(),
  credentialsUnreadableAt: nullableTime.describe('Set while the stored credentials cannot be decrypted with this deployment\'s key'),
  pollState: pollStateSchema,
  streamState: streamStateSchema,
});

export const newConnectionSchema = z
  .object({
    provider: safeText(64),
    transport: z.enum(['poll', 'stream']),
    baseUrl: safeText(2048).optional(),
    credentials: z.record(z.string(), z.unknown()).describe('Provider-specific; never returned, never logged'),
    options: z.record(z.string(), z.unknown()).optional().describe('Provider-specific settings that are not secret (docs/PROVIDERS.md)'),
    label: safeName(200).optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

export const connectionChangesSchema = z
  .object({
    label: safeName(200).optional(),
    enabled: z.boolean().optional(),
    baseUrl: safeText(2048).optional(),
    credentials: z.record(z.string(), z.unknown()).optional(),
    options: z.record(z.string(), z.unknown()).optional().describe('Replaces the options whole'),
  })
  .strict();

/** `GET /v1/providers`: one provider of the registry, as a connection form needs it. */
export const providerSchema = z.object({
  name: z.string().describe('The `provider` of a connection'),
  title: z.string(),
  transports: z.array(z.enum(['poll', 'stream'])),
  baseUrl: z.object({
    required: z.boolean().describe('No default: a connection must give its base URL'),
    default: z.string().nullable(),
    schemes: z.array(z.string()).describe('The URL schemes a base URL may have, as `URL.protocol` writes them (`https:`)'),
  }),
  credentials: z.object({ fields: z.array(z.string()), required: z.array(z.string()) }).describe('The fields of the credentials object, never any value'),
  options: z.array(z.string()).describe('The option fields the provider takes (docs/PROVIDERS.md)'),
});

export const deviceRefSchema = z.object({ connectionId: z.uuid(), externalId: externalDeviceIdSchema }).strict();

/** Compared, and kept, without case or surrounding spaces: one VIN per vehicle of a workspace. */
const vinSchema = safeName(64).toUpperCase().describe('Unique in the workspace, whatever its case; stored upper-case and trimmed');

export const newVehicleSchema = z
  .object({
    name: safeName(200),
    vin: vinSchema.nullable().optional(),
    active: z.boolean().optional(),
    devices: z.array(deviceRefSchema).max(50).optional(),
  })
  .strict();

export const vehicleChangesSchema = z
  .object({ name: safeName(200).optional(), active: z.boolean().optional(), vin: vinSchema.nullable().optional() })
  .strict();

export const vehicleMoveSchema = z
  .object({ workspaceId: z.uuid().describe('The workspace the vehicle moves to') })
  .strict();

export const signalStateSchema = z.object({
  value: z.unknown(),
  observedAt: z.string(),
  source: z.string(),
  provider: z.string(),
});

export const vehicleStatusReasonSchema = z.object({
  code: z.enum(vehicleReasonCodes),
  detail: z.string(),
  connectionId: z.string().nullable().describe('The connection the cause lies with, when it lies with one'),
  errorClass: z.string().nullable().describe('The provider error class behind the cause (connection_failing, a down socket), when there is one'),
});

export const vehicleSchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  name: z.string(),
  vin: z.string().nullable(),
  active: z.boolean(),
  createdAt: z.string(),
  lastSyncedAt: nullableTime,
  lastObservedAt: nullableTime,
  devices: z.array(z.object({ connectionId: z.string(), externalId: z.string(), provider: z.string() })),
  signals: z.record(z.string(), signalStateSchema),
  freshness: z.object({
    status: z.enum(vehicleStatuses),
    syncAgeSeconds: z.number().nullable(),
    observedAgeSeconds: z.number().nullable(),
    reason: z.object({ code: z.string(), detail: z.string(), connectionId: z.string().nullable() }).nullable(),
    statusReason: vehicleStatusReasonSchema.nullable().describe('Why a vehicle that is not fresh is behind, from a closed set; null when fresh'),
  }),
});

const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const cursor = z.string().max(2000).optional();

export const vehicleListQuery = z.object({
  limit: limit(1000, 100),
  cursor,
  active: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  status: z.enum(vehicleStatuses).optional().describe('Only vehicles with this freshness status, computed now'),
});

export const historyQuery = z.object({
  signal: safeText(64).optional(),
  from: timestampSchema.optional(),
  to: timestampSchema.optional(),
  limit: limit(10_000, 1000),
  cursor,
  order: z.enum(['asc', 'desc']).default('asc'),
  bucket: z
    .enum(['5m', '15m', '1h'])
    .optional()
    .describe('Downsample into buckets of this width (aligned to the Unix epoch): one item per signal and bucket; needs `from`'),
});

/** One bucket of one signal in a downsampled history (`bucket=`). */
export const historyBucketItemSchema = z.object({
  signal: z.string(),
  bucketStart: z.string(),
  bucketEnd: z.string(),
  count: z.number().int(),
  firstObservedAt: z.string(),
  lastObservedAt: z.string(),
  min: z.number().nullable().describe('Numbers only; null for other values'),
  max: z.number().nullable(),
  avg: z.number().nullable(),
  last: z.unknown().describe('The value of the bucket\'s newest reading'),
});

export const historyItemSchema = z.object({
  signal: z.string(),
  value: z.unknown(),
  observedAt: z.string(),
  source: z.string(),
  provider: z.string(),
  receivedAt: z.string(),
});

export const chargingSessionQuery = z.object({
  from: timestampSchema.optional().describe('Sessions that started at or after this time'),
  to: timestampSchema.optional().describe('Sessions that started before this time'),
  limit: limit(1000, 100),
  cursor,
});

export const chargingSessionItemSchema = z.object({
  id: z.string().describe("The provider's id of the session"),
  connectionId: z.string(),
  provider: z.string(),
  startedAt: z.string(),
  endedAt: nullableTime,
  startSocPct: z.number().nullable(),
  endSocPct: z.number().nullable(),
  energyKwh: z.number().nullable(),
  peakPowerKw: z.number().nullable(),
  location: z.object({ lat: z.number(), lon: z.number() }).nullable(),
  receivedAt: z.string(),
});

export const rejectionQuery = z.object({
  since: timestampSchema.optional(),
  reason: z.enum(rejectionReasons).optional(),
  limit: limit(1000, 100),
  cursor,
});

export const rejectionSchema = z.object({
  id: z.number(),
  workspaceId: z.string().nullable(),
  rejectedAt: z.string(),
  reason: z.string(),
  detail: z.string(),
  source: z.string().nullable(),
  provider: z.string().nullable(),
  connectionId: z.string().nullable(),
  externalDeviceId: z.string().nullable(),
  vehicleId: z.string().nullable(),
  signal: z.string().nullable(),
  update: z.unknown().describe('The latest example of the cause: the offending update (or, for a reading, its envelope and that reading)'),
  count: z.number().int().describe('Rejections of this cause (reason, connection, device, signal) within the hour of this row'),
  readingCount: z.number().int().describe('Readings they refused'),
  firstRejectedAt: z.string(),
  lastRejectedAt: z.string().describe('The same as rejectedAt'),
});

export const apiKeySchema = z.object({
  id: z.uuid(),
  workspaceId: z.uuid(),
  name: z.string(),
  createdAt: z.string(),
  lastUsedAt: nullableTime,
  revokedAt: nullableTime,
});

export const newApiKeySchema = z.object({ name: safeName(200).default('api key') }).strict();

export const ingestResponseSchema = z.object({
  results: z.array(
    z.object({
      index: z.number().int(),
      status: z.enum(updateStatuses),
      reason: z.enum(rejectionReasons).optional(),
      readings: z.array(
        z.object({
          signal: z.string(),
          status: z.enum(readingStatuses),
          reason: z.enum(rejectionReasons).optional(),
        }),
      ),
    }),
  ),
});

export function page<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const pollRunQuery = z.object({
  connectionId: z.uuid().optional(),
  status: z.enum(['running', 'succeeded', 'failed']).optional(),
  limit: limit(1000, 100),
  cursor,
});

export const pollRunSchema = z.object({
  id: z.number().int(),
  connectionId: z.string(),
  provider: z.string(),
  triggerEventId: z.string().nullable(),
  runner: z.string(),
  startedAt: z.string(),
  finishedAt: nullableTime,
  status: z.enum(['running', 'succeeded', 'failed']),
  errorClass: z.string().nullable(),
  errorMessage: z.string().nullable(),
  providerRequests: z.number().int(),
  pages: z.number().int(),
  skippedEntities: z.number().int(),
  notes: z.array(z.string()).describe('What an operator should know that did not fail the run (a feed restarted, say)'),
  readings: z.object({ accepted: z.number().int(), late: z.number().int(), duplicate: z.number().int(), rejected: z.number().int() }),
});

export const scheduledEventAnswerSchema = z.object({
  eventId: z.string(),
  duplicate: z.boolean(),
  workspacesDue: z.number().int(),
});

export const connectionHealthSchema = z.object({
  id: z.string(),
  provider: z.string(),
  transport: z.enum(['poll', 'stream']),
  label: z.string(),
  status: z.enum(connectionStatuses),
  detail: z.string(),
  lastSuccessAt: nullableTime,
  lastError: z.object({ class: z.string(), message: z.string(), at: nullableTime }).nullable(),
  nextAttemptAt: nullableTime,
  owner: z.enum(['core', 'legacy_poller']).describe('legacy_poller: a poll connection of a workspace in legacy cutover; lastSuccessAt is then its last accepted legacy_poll update'),
  sockets: z.object({ connected: z.number().int(), expected: z.number().int() }).nullable().describe("A stream connection's sockets: open, of those it needs"),
  lastScheduledAt: nullableTime.describe("A core-owned poll connection's last scheduled event (its workspace's)"),
});

export const workspaceHealthSchema = z.object({
  workspaceId: z.string(),
  name: z.string(),
  status: z.enum(workspaceStatuses),
  reasons: z.array(z.object({ code: z.string(), detail: z.string() })),
  freshness: z.object({
    thresholdSeconds: z.number(),
    silentAfterSeconds: z.number(),
    counts: z.object({ fresh: z.number(), stale: z.number(), silent: z.number(), never: z.number() }),
    freshRatio: z.number().nullable().describe('Reporting vehicles synced within the threshold (fresh or silent), as a share'),
    byReason: z.partialRecord(z.enum(vehicleReasonCodes), z.number().int()).describe('Vehicles that are not fresh, by the reason they are behind'),
  }),
  scheduler: z.object({
    status: z.enum(['ok', 'scheduler_silent', 'not_used', 'disabled']),
    lastScheduledAt: nullableTime,
    silentAfterSeconds: z.number().describe('Two poll intervals: silent when no scheduled event came for this long'),
  }),
  connections: z.array(connectionHealthSchema),
  cutover: z.object({ mode: z.enum(cutoverModes), changedAt: z.string() }),
  checkedAt: z.string(),
  ingest: z
    .object({ windowSeconds: z.number().int(), readings: z.number(), rejected: z.number() })
    .describe('Readings the ingest handler took over the last hour, and of them rejected: past 5 % the workspace says rejections_high'),
  discoveredDevices: z.object({ pending: z.number().int() }).describe('Devices providers report that wait to be bound or ignored'),
});
