/**
 * Delivers webhook subscriptions from the event log. Each subscription is worked by one core process at a time (a
 * claim it renews, taken over when it lapses). It reads a page of events after its cursor, delivers each subject's
 * events in order (subjects side by side, up to `concurrency`), and moves the cursor past the page only when every
 * event of it was delivered, in the same statement that records the attempts, fenced by the claim: at least once,
 * in order per subject. A failure holds the line: the event is retried with exponential backoff and jitter (about a
 * second at first, at most 5 minutes apart) for `giveUpAfterMs` (24 h), then the subscription is paused as failing;
 * 410 Gone ends it. Redirects are not followed, a slow receiver times out, and the target's address is checked
 * again at connection time.
 */
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import type { Logger } from '../../logging.ts';
import type { Database } from '../db/database.ts';
import { recordWebhookDelivery } from '../metrics.ts';
import { toCloudEvent, type StoredEvent } from './catalogue.ts';
import type { EventHub } from './event-hub.ts';
import { readEvents } from './event-log.ts';
import { signMessage } from './webhook-signing.ts';
import { checkLiteralHost, guardedLookup } from './webhook-targets.ts';
import { openSigningSecret, type WebhookDelivery } from './webhooks.ts';

export interface WebhookDispatcherOptions {
  db: Database;
  secretKey: Buffer;
  hub: EventHub;
  logger: Logger;
  /** This process's name in claims. */
  holder: string;
  /** Deliver to private, loopback and link-local addresses too (tests, the demo). */
  allowPrivate: boolean;
  timeoutMs?: number;
  claimMs?: number;
  scanMs?: number;
  concurrency?: number;
  pageSize?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  giveUpAfterMs?: number;
  random?: () => number;
}

export interface WebhookDispatcher {
  start(): void;
  stop(): Promise<void>;
}

interface Claimed {
  workspaceId: string;
  id: string;
  url: string;
  types: string[];
  secretCiphertext: string;
  cursor: number;
  attempts: number;
  failingSinceMs: number | null;
  /** When an operator last changed it, to the microsecond: a change since it was claimed fences its writes. */
  revision: string;
}

/** What recording a page came to: written (`ok`: the claim still held), or the write's error. */
type Recorded = { ok: boolean } | { error: unknown };

/** One delivery attempt, as recorded (`webhook_deliveries`). */
type Attempt = { event: StoredEvent } & Pick<WebhookDelivery, 'attempt' | 'outcome' | 'statusCode' | 'error' | 'durationMs' | 'latencyMs'>;

/** A subscription's last change as microseconds since the epoch, as text (exact, unlike a JavaScript Date). */
const revisionSql = (table: string) => `(extract(epoch FROM ${table}.updated_at) * 1000000)::bigint::text`;

/** What a delivery that got no answer says: a timeout, a refused target (its own words), or the error. */
function failureMessage(error: Error & { code?: string }, timeoutMs: number): string {
  if (error.name === 'TimeoutError' || error.code === 'UND_ERR_HEADERS_TIMEOUT' || error.code === 'UND_ERR_BODY_TIMEOUT') return `no answer within ${timeoutMs} ms`;
  const refusal = [error, error.cause as Error | undefined].find((e) => e?.name === 'WebhookTargetRefused');
  return refusal ? refusal.message : `${error.code ?? error.name}: ${error.message}`;
}

/** How much of a receiver's answer is read (and dropped) so the connection can be reused. */
const answerLimitBytes = 64 * 1024;

export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const claimMs = options.claimMs ?? 30_000;
  const scanMs = options.scanMs ?? 1000;
  const concurrency = options.concurrency ?? 8;
  const pageSize = options.pageSize ?? 200;
  const baseMs = options.backoffBaseMs ?? 1000;
  const capMs = options.backoffCapMs ?? 300_000;
  const giveUpAfterMs = options.giveUpAfterMs ?? 24 * 3600_000;
  const random = options.random ?? Math.random;
  const { db, logger } = options;
  // No cap on connections per origin: subscriptions of many workspaces can share a receiving host, and a cap would
  // let the ones whose receivers hang hold every connection to it while the others' deliveries queue and time out.
  // Each subscription has at most `concurrency` deliveries in flight, which bounds the sockets instead.
  const agent = new Agent({ connect: { lookup: guardedLookup(options.allowPrivate) }, keepAliveTimeout: 10_000 });

  const running = new Map<string, Promise<void>>();
  /** Per subscription: the events of its current page already delivered (kept across retries of the page). */
  const deliveredOfPage = new Map<string, { after: number; positions: Set<number> }>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let scanning: Promise<void> | undefined;
  let rescan = false;
  let unsubscribe: (() => void) | undefined;
  let lastErrorLogAt = 0;

  const key = (s: { workspaceId: string; id: string }) => `${s.workspaceId}/${s.id}`;
  const backoff = (attempts: number) => Math.round(Math.min(capMs, baseMs * 2 ** Math.max(0, attempts - 1)) * (0.5 + random()));

  async function claim(): Promise<Claimed[]> {
    const ids = [...running.keys()].map((k) => k.split('/'));
    if (ids.length > 0) {
      await db.query(
        `UPDATE webhook_subscriptions SET claimed_until = now() + $2 * interval '1 millisecond'
          WHERE claimed_by = $1 AND (workspace_id, id) IN (SELECT * FROM unnest($3::uuid[], $4::uuid[]))`,
        [options.holder, claimMs, ids.map((i) => i[0]), ids.map((i) => i[1])],
      );
    }
    const { rows } = await db.query<{
      workspace_id: string;
      id: string;
      url: string;
      types: string[];
      secret_ciphertext: string;
      cursor: string;
      attempts: number;
      failing_since: Date | null;
      revision: string;
    }>(
      `UPDATE webhook_subscriptions w
          SET claimed_by = $1, claimed_until = now() + $2 * interval '1 millisecond'
         FROM (SELECT workspace_id, id FROM webhook_subscriptions
                WHERE status = 'active'
                  AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by = $1)
                  AND (next_attempt_at IS NULL OR next_attempt_at <= now())
                ORDER BY workspace_id, id
                LIMIT 100
                  FOR UPDATE SKIP LOCKED) c
        WHERE w.workspace_id = c.workspace_id AND w.id = c.id
        RETURNING w.workspace_id, w.id, w.url, w.types, w.secret_ciphertext, w.cursor::text, w.attempts, w.failing_since,
                  ${revisionSql('w')} AS revision`,
      [options.holder, claimMs],
    );
    return rows.map((r) => ({
      workspaceId: r.workspace_id,
      id: r.id,
      url: r.url,
      types: r.types,
      secretCiphertext: r.secret_ciphertext,
      cursor: Number(r.cursor),
      attempts: r.attempts,
      failingSinceMs: r.failing_since ? r.failing_since.getTime() : null,
      revision: r.revision,
    }));
  }

  async function deliverOne(sub: Claimed, secret: string, event: StoredEvent, attempt: number): Promise<Attempt> {
    const body = JSON.stringify(toCloudEvent(event));
    const timestamp = Math.floor(Date.now() / 1000);
    const started = performance.now();
    const done = (outcome: Attempt['outcome'], statusCode: number | null, error: string | null): Attempt => {
      const latencyMs = outcome === 'delivered' ? Math.max(0, Date.now() - event.createdAtMs) : null;
      recordWebhookDelivery(outcome, latencyMs === null ? undefined : latencyMs / 1000);
      return { event, attempt, outcome, statusCode, error: error?.slice(0, 500) ?? null, durationMs: performance.now() - started, latencyMs };
    };
    try {
      const url = new URL(sub.url);
      checkLiteralHost(url, options.allowPrivate);
      const answer = await request(url, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'content-type': 'application/cloudevents+json; charset=utf-8',
          'user-agent': 'Fleetwire-Webhooks/1',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signMessage(secret, event.id, timestamp, body),
        },
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await answer.body.dump({ limit: answerLimitBytes }).catch(() => undefined);
      const status = answer.statusCode;
      if (status >= 200 && status < 300) return done('delivered', status, null);
      if (status === 410) return done('gone', status, 'the receiver answered 410 Gone');
      if (status >= 300 && status < 400) return done('failed', status, `HTTP ${status}: redirects are not followed; point the subscription at the final URL`);
      return done('failed', status, `HTTP ${status}`);
    } catch (error) {
      return done('failed', null, failureMessage(error as Error & { code?: string }, timeoutMs));
    }
  }

  /** Delivers a page: each subject's events in order, subjects side by side. Answers every attempt made. */
  async function deliverPage(sub: Claimed, secret: string, events: StoredEvent[], delivered: Set<number>, attempt: number): Promise<Attempt[]> {
    const bySubject = new Map<string, StoredEvent[]>();
    for (const event of events) {
      if (delivered.has(event.position)) continue;
      const list = bySubject.get(event.subject) ?? [];
      list.push(event);
      bySubject.set(event.subject, list);
    }
    const queues = [...bySubject.values()];
    const attempts: Attempt[] = [];
    const worker = async () => {
      for (let queue = queues.shift(); queue; queue = queues.shift()) {
        for (const event of queue) {
          if (stopped) return;
          const result = await deliverOne(sub, secret, event, attempt);
          attempts.push(result);
          if (result.outcome !== 'delivered') break;
          delivered.add(event.position);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queues.length) }, worker));
    return attempts;
  }

  /** Records a page's attempts and the subscription's new state, if this process still holds it unchanged. */
  async function persist(sub: Claimed, attempts: Attempt[], state: string, params: unknown[]): Promise<boolean> {
    const { rows } = await db.query<{ ok: number }>(
      `WITH changed AS (
         UPDATE webhook_subscriptions SET ${state}
          WHERE workspace_id = $1 AND id = $2 AND claimed_by = $3 AND status = 'active' AND ${revisionSql('webhook_subscriptions')} = $4
         RETURNING 1
       ),
       recorded AS (
         INSERT INTO webhook_deliveries
                (workspace_id, subscription_id, event_id, event_type, event_position, attempt, outcome, status_code, error, duration_ms, latency_ms)
         SELECT $1, $2, a.event_id, a.event_type, a.event_position, a.attempt, a.outcome, a.status_code, a.error, a.duration_ms, a.latency_ms
           FROM jsonb_to_recordset($5::jsonb) AS a(event_id uuid, event_type text, event_position bigint, attempt int, outcome text,
                                                   status_code int, error text, duration_ms float8, latency_ms float8)
          WHERE EXISTS (SELECT 1 FROM changed)
       )
       SELECT count(*)::int AS ok FROM changed`,
      [
        sub.workspaceId,
        sub.id,
        options.holder,
        sub.revision,
        JSON.stringify(
          attempts.map((a) => ({
            event_id: a.event.id,
            event_type: a.event.type,
            event_position: a.event.position,
            attempt: a.attempt,
            outcome: a.outcome,
            status_code: a.statusCode,
            error: a.error,
            duration_ms: a.durationMs,
            latency_ms: a.latencyMs,
          })),
        ),
        ...params,
      ],
    );
    return rows[0]?.ok === 1;
  }

  /**
   * Works a subscription's line until it has caught up with the hub's head (answering the position it reached), or
   * until it cannot go on (a failure waiting for its retry, a lost claim, an end, a stop: answering nothing).
   */
  async function work(sub: Claimed): Promise<number | undefined> {
    const subKey = key(sub);
    let secret: string;
    try {
      secret = openSigningSecret(options.secretKey, sub.workspaceId, sub.id, sub.secretCiphertext);
    } catch {
      await persist(sub, [], `last_error = $6, last_error_at = now(), next_attempt_at = now() + interval '5 minutes'`, [
        "the signing secret cannot be decrypted with this deployment's key: delete the subscription and make it again",
      ]);
      return;
    }
    let cursor = sub.cursor;
    let attempts = sub.attempts;
    // A delivered page is recorded while the next one is read and delivered: the cursor row and the attempts of
    // page N are written beside the requests of page N+1, and page N+1's outcome is written only after page N's
    // (so the cursor never moves past an event that was not delivered, and a lost claim stops the line).
    let recording: Promise<Recorded> = Promise.resolve({ ok: true });
    const recorded = async (): Promise<boolean> => {
      const result = await recording;
      if ('error' in result) throw result.error;
      return result.ok;
    };
    try {
      while (!stopped) {
        const through = options.hub.head();
        if (cursor >= through) return cursor;
        const events = await readEvents(db, { workspaceId: sub.workspaceId, after: cursor, through, types: sub.types, limit: pageSize });
        const pageEnd = events.length < pageSize ? through : events[events.length - 1]!.position;
        const page = deliveredOfPage.get(subKey);
        const delivered = page && page.after === cursor ? page.positions : new Set<number>();
        deliveredOfPage.set(subKey, { after: cursor, positions: delivered });
        const made = await deliverPage(sub, secret, events, delivered, attempts + 1);
        if (stopped || !(await recorded())) return;
        const gone = made.find((a) => a.outcome === 'gone');
        const failed = made.filter((a) => a.outcome === 'failed').sort((a, b) => a.event.position - b.event.position)[0];
        if (gone) {
          await persist(sub, made, `status = 'ended', status_reason = $6, claimed_by = NULL, claimed_until = NULL`, [`the receiver answered 410 Gone for event ${gone.event.id}`]);
          deliveredOfPage.delete(subKey);
          logger.warn({ 'fleetwire.workspace.id': sub.workspaceId, 'fleetwire.webhook.id': sub.id }, 'webhook receiver answered 410 Gone: subscription ended');
          return;
        }
        if (failed) {
          attempts += 1;
          const failingSinceMs = sub.failingSinceMs ?? Date.now();
          const givingUp = Date.now() - failingSinceMs >= giveUpAfterMs;
          const delay = backoff(attempts);
          const ok = await persist(
            sub,
            made,
            `attempts = $6, failing_since = COALESCE(failing_since, now()), last_error = $7, last_error_at = now(),
             next_attempt_at = now() + $8 * interval '1 millisecond'${givingUp ? `, status = 'paused', status_reason = $9` : ''}`,
            [attempts, failed.error, delay, ...(givingUp ? [`failing for ${Math.round(giveUpAfterMs / 3600_000)} h (last: ${failed.error}); resume it once the receiver works`] : [])],
          );
          if (ok && givingUp) logger.warn({ 'fleetwire.workspace.id': sub.workspaceId, 'fleetwire.webhook.id': sub.id }, 'webhook subscription paused after failing too long');
          return;
        }
        // Settled here, not when awaited: a failure of the write is thrown by the next `recorded()`, never left unhandled.
        recording = persist(sub, made, `cursor = $6, attempts = 0, failing_since = NULL, next_attempt_at = NULL${made.length > 0 ? ', last_success_at = now()' : ''}`, [pageEnd]).then(
          (ok) => ({ ok }),
          (error: unknown) => ({ error }),
        );
        deliveredOfPage.delete(subKey);
        cursor = pageEnd;
        attempts = 0;
        sub.failingSinceMs = null;
      }
    } finally {
      // The last page's record is written before the line is let go (and its failure reported like any other).
      await recorded();
    }
  }

  async function scan(): Promise<void> {
    const claimed = await claim();
    for (const sub of claimed) {
      const subKey = key(sub);
      if (running.has(subKey)) continue;
      let reached: number | undefined;
      const job = work(sub)
        .then((position) => {
          reached = position;
        })
        .catch((error: unknown) => {
          if (Date.now() - lastErrorLogAt > 60_000) {
            lastErrorLogAt = Date.now();
            logger.warn({ err: error, 'fleetwire.webhook.id': sub.id }, 'webhook delivery failed; it tries again');
          }
        })
        .finally(() => {
          running.delete(subKey);
          // Events that arrived after its last look were not taken up by the scan their arrival started (the line
          // was still running then): look again. A line that stopped for a retry waits for it (the scan's timer).
          if (!stopped && reached !== undefined && options.hub.head() > reached) kick();
        });
      running.set(subKey, job);
    }
  }

  function kick(): void {
    if (stopped) return;
    if (scanning) {
      rescan = true;
      return;
    }
    scanning = scan()
      .catch((error: unknown) => {
        if (Date.now() - lastErrorLogAt > 60_000) {
          lastErrorLogAt = Date.now();
          logger.warn({ err: error }, 'webhook scan failed; it runs again');
        }
      })
      .finally(() => {
        scanning = undefined;
        if (rescan) {
          rescan = false;
          setImmediate(kick);
        }
      });
  }

  return {
    start() {
      unsubscribe = options.hub.onAdvance(() => kick());
      timer = setInterval(kick, scanMs);
      timer.unref();
      kick();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      unsubscribe?.();
      await scanning?.catch(() => undefined);
      await Promise.all(running.values());
      // Claims are let go so another process takes over at once.
      await db
        .query('UPDATE webhook_subscriptions SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1', [options.holder])
        .catch(() => undefined);
      await agent.close().catch(() => undefined);
    },
  };
}
