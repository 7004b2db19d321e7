/**
 * What workspace health says about the data arriving rather than the pipeline carrying it: the share of the last
 * hour's readings the ingest handler rejected (from ingest_reading_counts, a few rows per connection), and the
 * discovered devices that wait for an operator. A workspace that rejects more than a share of its readings is told
 * `rejections_high`: health used to stay `ok` while a shared account wrote a rejection for every reading.
 */
import type { Sql } from '../db/database.ts';
import { readingCountBucketMs } from '../ingest/rejection-aggregation.ts';
import { countPendingDiscovered } from '../registry/discovered-devices.ts';
import type { HealthReason } from './rules.ts';

/** Rejections above this share of a workspace's readings in the window are a health reason. */
export const rejectionShareLimit = 0.05;
/** Below this many rejected readings in the window, no share is worth a reason (a test batch, one bad reading). */
export const rejectionReasonMinimum = 10;
export const rejectionWindowSeconds = 3600;

export interface IngestShare {
  windowSeconds: number;
  readings: number;
  rejected: number;
}

export interface OnboardingFacts {
  ingest: IngestShare;
  discoveredDevices: { pending: number };
}

/**
 * Readings and rejected readings of each workspace over the last hour, in whole count buckets (five minutes): the
 * bucket `now` is in and those that started within the hour before it.
 */
async function loadIngestShares(sql: Sql, workspaceIds: readonly string[] | 'all', nowMs: number): Promise<Map<string, IngestShare>> {
  const from = Math.floor((nowMs - rejectionWindowSeconds * 1000) / readingCountBucketMs) * readingCountBucketMs + readingCountBucketMs;
  const { rows } = await sql.query<{ workspace_id: string; readings: number; rejected: number }>(
    `SELECT workspace_id, sum(readings)::float8 AS readings, sum(rejected)::float8 AS rejected
       FROM ingest_reading_counts
      WHERE ($1::uuid[] IS NULL OR workspace_id = ANY($1::uuid[])) AND bucket_start >= $2 AND bucket_start <= $3
      GROUP BY workspace_id`,
    [workspaceIds === 'all' ? null : workspaceIds, new Date(from).toISOString(), new Date(nowMs).toISOString()],
  );
  return new Map(rows.map((row) => [row.workspace_id, { windowSeconds: rejectionWindowSeconds, readings: row.readings, rejected: row.rejected }]));
}

export async function loadOnboardingFacts(sql: Sql, workspaceIds: readonly string[] | 'all', nowMs: number): Promise<Map<string, OnboardingFacts>> {
  const [shares, pending] = await Promise.all([loadIngestShares(sql, workspaceIds, nowMs), countPendingDiscovered(sql, workspaceIds)]);
  const facts = new Map<string, OnboardingFacts>();
  for (const id of new Set([...shares.keys(), ...pending.keys()])) {
    facts.set(id, { ingest: shares.get(id) ?? emptyShare(), discoveredDevices: { pending: pending.get(id) ?? 0 } });
  }
  return facts;
}

export const emptyOnboardingFacts = (): OnboardingFacts => ({ ingest: emptyShare(), discoveredDevices: { pending: 0 } });
const emptyShare = (): IngestShare => ({ windowSeconds: rejectionWindowSeconds, readings: 0, rejected: 0 });

/** `rejections_high` when the window's rejections pass the share and the minimum; with the counts in its detail. */
export function rejectionShareReason(share: IngestShare, pendingDevices: number): HealthReason | null {
  if (share.rejected < rejectionReasonMinimum || share.rejected <= share.readings * rejectionShareLimit) return null;
  const percent = (n: number) => `${Math.round(n * 1000) / 10} %`;
  const devices = pendingDevices > 0 ? `; ${pendingDevices} discovered device${pendingDevices === 1 ? ' waits' : 's wait'} to be bound or ignored` : '';
  return {
    code: 'rejections_high',
    detail: `${share.rejected} of ${share.readings} readings in the last hour were rejected (${percent(share.rejected / share.readings)}, above ${percent(rejectionShareLimit)})${devices}`,
  };
}
