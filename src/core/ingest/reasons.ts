/**
 * The ingest handler's answers (DESIGN §4). Rejections are answers, not errors: each has a stable reason code,
 * is returned to the sender and stored where an operator can query it.
 */
export const rejectionReasons = [
  'malformed',
  'unknown_workspace',
  'telematics_disabled',
  'unknown_device',
  // A device an operator ignores (discovered devices): answered, counted on its discovered row, never stored.
  'device_ignored',
  'device_inactive',
  'source_not_owner',
  'not_lease_holder',
  'unknown_signal',
  'invalid_value',
  'future_timestamp',
  'too_old',
  'implausible_value',
] as const;

export type RejectionReason = (typeof rejectionReasons)[number];

/** `shadowed`: a reading of core's polling while the workspace is in shadow, kept for parity only (no snapshot, no history). */
export const readingStatuses = ['accepted', 'late', 'duplicate', 'rejected', 'shadowed'] as const;
export type ReadingStatus = (typeof readingStatuses)[number];

export const updateStatuses = ['processed', 'rejected'] as const;
export type UpdateStatus = (typeof updateStatuses)[number];

/** How far ahead of the server clock an observed time may be (clock skew allowance). */
export const futureAllowanceMs = 120_000;

export interface ReadingResult {
  signal: string;
  status: ReadingStatus;
  reason?: RejectionReason;
}

export interface UpdateResult {
  index: number;
  status: UpdateStatus;
  reason?: RejectionReason;
  readings: ReadingResult[];
}

export interface IngestCounts {
  updatesProcessed: number;
  updatesRejected: number;
  accepted: number;
  late: number;
  duplicate: number;
  rejected: number;
  shadowed: number;
}

export interface IngestOutcome {
  results: UpdateResult[];
  counts: IngestCounts;
}
