/**
 * Read side for one vehicle's history, in observed-time order, with cursor pagination: every reading, or the
 * readings downsampled into time buckets for a chart. The primary key (workspace, vehicle, signal, observed time)
 * serves every form of these queries; partitions outside [from, to) are pruned.
 */
import { z } from 'zod';
import { signalCatalogue, signalNames } from '../../canonical/signals.ts';
import type { Sql } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';

export interface HistoryItem {
  signal: string;
  value: unknown;
  observedAt: string;
  source: string;
  provider: string;
  receivedAt: string;
}

export interface HistoryQuery {
  signal?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  limit: number;
  cursor?: string | undefined;
  order: 'asc' | 'desc';
}

export async function readHistory(
  sql: Sql,
  workspaceId: string,
  vehicleId: string,
  query: HistoryQuery,
): Promise<{ items: HistoryItem[]; nextCursor: string | null }> {
  const exists = await sql.query('SELECT 1 FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
  if (exists.rowCount === 0) throw notFound('vehicle', vehicleId);
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'text']);
  const ascending = query.order === 'asc';
  const { rows } = await sql.query<{
    signal: string;
    value: unknown;
    observed_at: Date;
    source: string;
    provider: string;
    received_at: Date;
  }>(
    `SELECT signal, value, observed_at, source, provider, received_at
       FROM signal_history
      WHERE workspace_id = $1 AND vehicle_id = $2
        AND ($3::text IS NULL OR signal = $3)
        AND ($4::timestamptz IS NULL OR observed_at >= $4)
        AND ($5::timestamptz IS NULL OR observed_at < $5)
        AND ($6::timestamptz IS NULL OR ${ascending ? '(observed_at, signal) > ($6, $7::text)' : '(observed_at, signal) < ($6, $7::text)'})
      ORDER BY observed_at ${ascending ? 'ASC' : 'DESC'}, signal ${ascending ? 'ASC' : 'DESC'}
      LIMIT $8`,
    [workspaceId, vehicleId, query.signal ?? null, query.from ?? null, query.to ?? null, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  const items = rows.slice(0, query.limit).map((row) => ({
    signal: row.signal,
    value: row.value,
    observedAt: row.observed_at.toISOString(),
    source: row.source,
    provider: row.provider,
    receivedAt: row.received_at.toISOString(),
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.observedAt, last.signal]) : null };
}

/** The bucket widths the chart asks for, in seconds: 5 min draws a day, 1 h a week. */
export const historyBuckets = { '5m': 300, '15m': 900, '1h': 3600 } as const;
export type HistoryBucket = keyof typeof historyBuckets;

/**
 * At most this many buckets per signal in one answer: a week at 5 min. A wider range asks for a wider bucket, so a
 * chart never pulls more points than it can draw.
 */
export const maxBucketsPerSignal = 2016;

/** One bucket of one signal: its readings' span, count, and for numbers min / max / mean; always the last value. */
export interface HistoryBucketItem {
  signal: string;
  bucketStart: string;
  bucketEnd: string;
  count: number;
  firstObservedAt: string;
  lastObservedAt: string;
  min: number | null;
  max: number | null;
  avg: number | null;
  last: unknown;
}

/**
 * The signals whose values are numbers, from the catalogue: ingest admits nothing else for them, so the query casts
 * their values without asking each one its JSON type (the largest share of its cost), and no other signal's.
 */
const numericSignals = signalNames.filter((name) => signalCatalogue[name].value instanceof z.ZodNumber);

export interface BucketedHistoryQuery extends HistoryQuery {
  bucket: HistoryBucket;
}

/**
 * One vehicle's history downsampled into fixed buckets aligned to the Unix epoch (so the same bucket reads the same
 * whoever asks, in any time zone), in the same order and with the same cursor form as `readHistory`, keyed by
 * (bucket start, signal). `from` is required and `to` defaults to `now`; the range may hold at most
 * `maxBucketsPerSignal` buckets. The aggregation runs in the database over the primary key's range, so a week of
 * one signal reads its ~10,000 rows once and answers 168 buckets.
 */
export async function readBucketedHistory(
  sql: Sql,
  workspaceId: string,
  vehicleId: string,
  query: BucketedHistoryQuery,
  now: number,
): Promise<{ items: HistoryBucketItem[]; nextCursor: string | null }> {
  const seconds = historyBuckets[query.bucket];
  if (query.from === undefined) throw new DomainError('invalid', 'history_range_required', 'a bucketed history needs `from` (and takes `to`, default now)');
  const fromMs = Date.parse(query.from);
  const toMs = query.to === undefined ? now : Date.parse(query.to);
  if (!(toMs > fromMs)) throw new DomainError('invalid', 'invalid_range', '`to` must be after `from`');
  const buckets = Math.ceil((toMs - fromMs) / 1000 / seconds);
  if (buckets > maxBucketsPerSignal) {
    throw new DomainError('invalid', 'too_many_buckets', `[from, to) holds ${buckets} buckets of ${query.bucket}; at most ${maxBucketsPerSignal}: ask for a wider bucket or a shorter range`);
  }
  const exists = await sql.query('SELECT 1 FROM vehicles WHERE workspace_id = $1 AND id = $2', [workspaceId, vehicleId]);
  if (exists.rowCount === 0) throw notFound('vehicle', vehicleId);
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, ['timestamp', 'text']);
  const ascending = query.order === 'asc';
  // The cursor's bucket bounds the scan too (not only the answer), so a later page reads no rows of earlier ones.
  const afterMs = after === undefined ? undefined : Date.parse(after[0] as string);
  const scanFrom = ascending && afterMs !== undefined ? Math.max(fromMs, afterMs) : fromMs;
  const scanTo = !ascending && afterMs !== undefined ? Math.min(toMs, afterMs + seconds * 1000) : toMs;
  const { rows } = await sql.query<{
    signal: string;
    bucket_start: Date;
    n: number;
    first_at: Date;
    last_at: Date;
    min: number | null;
    max: number | null;
    avg: number | null;
    last: unknown;
  }>(
    `SELECT signal, bucket_start, count(*)::int AS n, min(observed_at) AS first_at, max(observed_at) AS last_at,
            min(num) AS min, max(num) AS max, avg(num) AS avg, (array_agg(value ORDER BY observed_at DESC))[1] AS last
       FROM (SELECT signal, observed_at, value,
                    date_bin(make_interval(secs => $6), observed_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket_start,
                    CASE WHEN signal = ANY($10::text[]) THEN value::float8 END AS num
               FROM signal_history
              WHERE workspace_id = $1 AND vehicle_id = $2
                AND ($3::text IS NULL OR signal = $3)
                AND observed_at >= $4 AND observed_at < $5) AS h
      GROUP BY signal, bucket_start
     HAVING $7::timestamptz IS NULL OR ${ascending ? '(bucket_start, signal) > ($7, $8::text)' : '(bucket_start, signal) < ($7, $8::text)'}
      ORDER BY bucket_start ${ascending ? 'ASC' : 'DESC'}, signal ${ascending ? 'ASC' : 'DESC'}
      LIMIT $9`,
    [workspaceId, vehicleId, query.signal ?? null, new Date(scanFrom).toISOString(), new Date(scanTo).toISOString(), seconds, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1, numericSignals],
  );
  const items = rows.slice(0, query.limit).map((row) => ({
    signal: row.signal,
    bucketStart: row.bucket_start.toISOString(),
    bucketEnd: new Date(row.bucket_start.getTime() + seconds * 1000).toISOString(),
    count: row.n,
    firstObservedAt: row.first_at.toISOString(),
    lastObservedAt: row.last_at.toISOString(),
    min: row.min,
    max: row.max,
    avg: row.avg,
    last: row.last,
  }));
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodeCursor([last.bucketStart, last.signal]) : null };
}
