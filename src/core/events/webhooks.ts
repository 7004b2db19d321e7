/**
 * Webhook subscriptions: made and changed by an admin, each with a signing secret shown once (stored encrypted
 * under the deployment's key), its types, its cursor in the event log, and the state of its deliveries.
 */
import { randomUUID } from 'node:crypto';
import type { Sql } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import { openText, sealText, webhookAad } from '../registry/credentials-cipher.ts';
import { isEventType } from './catalogue.ts';
import { eventLogHead } from './event-log.ts';
import { newSigningSecret } from './webhook-signing.ts';
import { checkTarget } from './webhook-targets.ts';

export type WebhookStatus = 'active' | 'paused' | 'ended';

export interface WebhookHealth {
  /** Events of its types after its cursor (counted up to 100,000). */
  backlog: number;
  /** Age of the oldest of them, in seconds; null without a backlog. */
  oldestUndeliveredAgeSeconds: number | null;
  lastSuccessAt: string | null;
  lastError: { message: string; at: string } | null;
  /** Since when the event at the head of its line has failed; null while deliveries succeed. */
  failingSince: string | null;
  nextAttemptAt: string | null;
  /** Delivery latency (event commit to the receiver's 2xx) over the last hour; null without deliveries. */
  latencyMs: { p50: number; p99: number } | null;
}

export interface Webhook {
  id: string;
  workspaceId: string;
  url: string;
  types: string[];
  description: string;
  status: WebhookStatus;
  statusReason: string | null;
  createdAt: string;
  updatedAt: string;
  health: WebhookHealth;
}

const maxBacklogCount = 100_000;

function checkTypes(types: readonly string[]): string[] {
  const unique = [...new Set(types)];
  const unknown = unique.filter((t) => !isEventType(t));
  if (unknown.length > 0) throw new DomainError('invalid', 'unknown_event_type', `not event types: ${unknown.slice(0, 5).map((t) => JSON.stringify(t.slice(0, 80))).join(', ')}`);
  if (unique.length === 0) throw new DomainError('invalid', 'unknown_event_type', 'a subscription needs at least one event type');
  return unique;
}

interface WebhookRow {
  workspace_id: string;
  id: string;
  url: string;
  types: string[];
  description: string;
  status: WebhookStatus;
  status_reason: string | null;
  cursor: string;
  failing_since: Date | null;
  next_attempt_at: Date | null;
  last_success_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
  created_at: Date;
  updated_at: Date;
  backlog: string;
  oldest_created_at: Date | null;
  p50: number | null;
  p99: number | null;
}

/** A subscription `w`'s backlog: events of its types after its cursor, counted up to `maxBacklogCount`. */
const backlogSql = `(SELECT count(*) FROM (SELECT 1 FROM events e
                              WHERE e.workspace_id = w.workspace_id AND e.position > w.cursor AND e.type = ANY(w.types)
                              LIMIT ${maxBacklogCount}) b)::text`;

const selectWebhooks = `
  SELECT w.workspace_id, w.id, w.url, w.types, w.description, w.status, w.status_reason, w.cursor::text,
         w.failing_since, w.next_attempt_at, w.last_success_at, w.last_error, w.last_error_at, w.created_at, w.updated_at,
         ${backlogSql} AS backlog,
         (SELECT min(e.created_at) FROM (SELECT created_at FROM events e
                                          WHERE e.workspace_id = w.workspace_id AND e.position > w.cursor AND e.type = ANY(w.types)
                                          ORDER BY e.position LIMIT 1) e) AS oldest_created_at,
         l.p50, l.p99
    FROM webhook_subscriptions w
    LEFT JOIN LATERAL (
      SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99
        FROM webhook_deliveries d
       WHERE d.workspace_id = w.workspace_id AND d.subscription_id = w.id AND d.outcome = 'delivered'
         AND d.attempted_at > now() - interval '1 hour'
    ) l ON true`;

function toWebhook(row: WebhookRow, nowMs: number): Webhook {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    url: row.url,
    types: row.types,
    description: row.description,
    status: row.status,
    statusReason: row.status_reason,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    health: {
      backlog: Number(row.backlog),
      oldestUndeliveredAgeSeconds: row.oldest_created_at ? Math.max(0, Math.round((nowMs - row.oldest_created_at.getTime()) / 1000)) : null,
      lastSuccessAt: iso(row.last_success_at),
      lastError: row.last_error && row.last_error_at ? { message: row.last_error, at: row.last_error_at.toISOString() } : null,
      failingSince: iso(row.failing_since),
      nextAttemptAt: iso(row.next_attempt_at),
      latencyMs: row.p50 === null || row.p99 === null ? null : { p50: Math.round(row.p50 * 10) / 10, p99: Math.round(row.p99 * 10) / 10 },
    },
  };
}

export async function listWebhooks(sql: Sql, workspaceId: string, nowMs = Date.now()): Promise<Webhook[]> {
  const { rows } = await sql.query<WebhookRow>(`${selectWebhooks} WHERE w.workspace_id = $1 ORDER BY w.created_at, w.id`, [workspaceId]);
  return rows.map((row) => toWebhook(row, nowMs));
}

export async function getWebhook(sql: Sql, workspaceId: string, id: string, nowMs = Date.now()): Promise<Webhook> {
  const { rows } = await sql.query<WebhookRow>(`${selectWebhooks} WHERE w.workspace_id = $1 AND w.id = $2`, [workspaceId, id]);
  if (!rows[0]) throw notFound('webhook', id);
  return toWebhook(rows[0], nowMs);
}

export interface NewWebhook {
  url: string;
  types: string[];
  description?: string | undefined;
}

/** Makes a subscription that starts at the present; answers it with its signing secret, which is never shown again. */
export async function createWebhook(
  sql: Sql,
  secretKey: Buffer,
  workspaceId: string,
  input: NewWebhook,
  options: { allowPrivate: boolean },
): Promise<Webhook & { secret: string }> {
  const url = await checkTarget(input.url, options.allowPrivate);
  const types = checkTypes(input.types);
  const id = randomUUID();
  const secret = newSigningSecret();
  const head = await eventLogHead(sql);
  const { rowCount } = await sql.query(
    `INSERT INTO webhook_subscriptions (workspace_id, id, url, types, description, secret_ciphertext, cursor)
     SELECT $1, $2, $3, $4::text[], $5, $6, $7 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)`,
    [workspaceId, id, url.href, types, input.description ?? '', sealText(secretKey, webhookAad(workspaceId, id), secret), head],
  );
  if (rowCount === 0) throw notFound('workspace', workspaceId);
  return { ...(await getWebhook(sql, workspaceId, id)), secret };
}

export interface WebhookChanges {
  url?: string | undefined;
  types?: string[] | undefined;
  description?: string | undefined;
  /** `paused` stops deliveries; `active` resumes them (a subscription paused for failing starts its retries afresh). */
  status?: 'active' | 'paused' | undefined;
}

export async function updateWebhook(sql: Sql, workspaceId: string, id: string, changes: WebhookChanges, options: { allowPrivate: boolean }): Promise<Webhook> {
  const url = changes.url === undefined ? null : (await checkTarget(changes.url, options.allowPrivate)).href;
  const types = changes.types === undefined ? null : checkTypes(changes.types);
  const { rows } = await sql.query<{ status: WebhookStatus }>('SELECT status FROM webhook_subscriptions WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  if (!rows[0]) throw notFound('webhook', id);
  if (rows[0].status === 'ended' && changes.status === 'active') {
    throw new DomainError('conflict', 'webhook_ended', 'the receiver answered 410 Gone: this subscription has ended; make a new one');
  }
  const resume = changes.status === 'active';
  await sql.query(
    `UPDATE webhook_subscriptions
        SET url = COALESCE($3, url), types = COALESCE($4::text[], types), description = COALESCE($5, description),
            status = COALESCE($6, status),
            status_reason = CASE WHEN $6::text IS NULL THEN status_reason WHEN $6 = 'paused' THEN 'paused by an operator' ELSE NULL END,
            failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END,
            attempts = CASE WHEN $7 THEN 0 ELSE attempts END,
            next_attempt_at = CASE WHEN $7 THEN NULL ELSE next_attempt_at END,
            updated_at = now()
      WHERE workspace_id = $1 AND id = $2`,
    [workspaceId, id, url, types, changes.description ?? null, changes.status ?? null, resume],
  );
  return getWebhook(sql, workspaceId, id);
}

export async function deleteWebhook(sql: Sql, workspaceId: string, id: string): Promise<void> {
  const { rowCount } = await sql.query('DELETE FROM webhook_subscriptions WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  if (rowCount === 0) throw notFound('webhook', id);
}

/**
 * Moves a subscription's cursor back (or forward) to just before the first event stored at or after `from`, so
 * everything since is delivered again (receivers de-duplicate by `webhook-id`); its retries start afresh.
 */
export async function replayWebhook(sql: Sql, workspaceId: string, id: string, from: string): Promise<{ cursor: number; webhook: Webhook }> {
  const { rows } = await sql.query<{ cursor: string }>(
    `UPDATE webhook_subscriptions w
        SET cursor = COALESCE((SELECT min(e.position) - 1 FROM events e
                                WHERE e.workspace_id = w.workspace_id AND e.created_at >= $3),
                              (SELECT last_position FROM event_log_head)),
            failing_since = NULL, attempts = 0, next_attempt_at = NULL, updated_at = now()
      WHERE workspace_id = $1 AND id = $2
      RETURNING cursor::text`,
    [workspaceId, id, from],
  );
  if (!rows[0]) throw notFound('webhook', id);
  return { cursor: Number(rows[0].cursor), webhook: await getWebhook(sql, workspaceId, id) };
}

export interface WebhookDelivery {
  eventId: string;
  eventType: string;
  eventPosition: number;
  attempt: number;
  outcome: 'delivered' | 'failed' | 'gone';
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  latencyMs: number | null;
  attemptedAt: string;
}

export async function listDeliveries(sql: Sql, workspaceId: string, id: string, limit: number): Promise<WebhookDelivery[]> {
  await getWebhook(sql, workspaceId, id);
  const { rows } = await sql.query<{
    event_id: string;
    event_type: string;
    event_position: string;
    attempt: number;
    outcome: WebhookDelivery['outcome'];
    status_code: number | null;
    error: string | null;
    duration_ms: number;
    latency_ms: number | null;
    attempted_at: Date;
  }>(
    `SELECT event_id, event_type, event_position::text, attempt, outcome, status_code, error, duration_ms, latency_ms, attempted_at
       FROM webhook_deliveries WHERE workspace_id = $1 AND subscription_id = $2 ORDER BY id DESC LIMIT $3`,
    [workspaceId, id, limit],
  );
  return rows.map((r) => ({
    eventId: r.event_id,
    eventType: r.event_type,
    eventPosition: Number(r.event_position),
    attempt: r.attempt,
    outcome: r.outcome,
    statusCode: r.status_code,
    error: r.error,
    durationMs: Math.round(r.duration_ms * 10) / 10,
    latencyMs: r.latency_ms === null ? null : Math.round(r.latency_ms * 10) / 10,
    attemptedAt: r.attempted_at.toISOString(),
  }));
}

/** The signing secret of a subscription, for its dispatcher. */
export function openSigningSecret(secretKey: Buffer, workspaceId: string, id: string, stored: string): string {
  return openText(secretKey, webhookAad(workspaceId, id), stored);
}

/** Every subscription's state and backlog, for the metrics. */
export async function webhookStates(sql: Sql): Promise<{ workspaceId: string; id: string; status: string; failing: boolean; backlog: number }[]> {
  const { rows } = await sql.query<{ workspace_id: string; id: string; status: string; failing: boolean; backlog: string }>(
    `SELECT w.workspace_id, w.id, w.status, w.failing_since IS NOT NULL AS failing, ${backlogSql} AS backlog
       FROM webhook_subscriptions w`,
  );
  return rows.map((r) => ({ workspaceId: r.workspace_id, id: r.id, status: r.status, failing: r.failing, backlog: Number(r.backlog) }));
}
