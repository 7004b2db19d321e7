/**
 * A core app on a fresh test database, listening on a loopback port, with known tokens; and a small HTTP client
 * for it. Tests talk to it over real HTTP.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { buildCoreApp, type CoreAppOptions } from '../../src/core/http/app.ts';
import { createIngestGate, type IngestGate } from '../../src/core/ingest/ingest-gate.ts';
import { createPollJobQueue, type PollJobQueue } from '../../src/core/polling/job-queue.ts';
import { createPollRunner, type PollRunner, type PollRunnerOptions } from '../../src/core/polling/poll-runner.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { pollAdapters } from '../../src/providers/registry.ts';
import type { Database } from '../../src/core/db/database.ts';
import { createEventHub, type EventHub } from '../../src/core/events/event-hub.ts';
import type { EventStreamTimings } from '../../src/core/http/routes/events.ts';
import { createLogger } from '../../src/logging.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

/**
 * The clock a test core judges freshness and the ingest time rules by: the real clock plus an offset the test moves,
 * so a test can stand in for passing minutes without sleeping. Rows the database stamps keep the database's clock.
 */
export interface TestClock {
  now(): number;
  /** Moves the clock forward by `ms` (or back, with a negative `ms`). */
  advance(ms: number): void;
  /** Back to the real clock. */
  reset(): void;
}

export function testClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
    reset: () => {
      offset = 0;
    },
  };
}

export interface TestCore {
  url: string;
  clock: TestClock;
  app: FastifyInstance;
  db: Database;
  database: TestDatabase;
  adminToken: string;
  serviceToken: string;
  secretKey: Buffer;
  /** Every log line the app wrote, for tests that look for leaked secrets. */
  logs: string[];
  jobs: PollJobQueue;
  /** The event log's hub: `flush()` sequences what has committed now, rather than at the next interval. */
  events: EventHub;
  /** The poll runner (also working the job queue when `polling.work` was asked for). */
  runner: PollRunner;
  http: HttpClient;
  close(): Promise<void>;
}

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface HttpClient {
  /** `rawBody` goes as it is; `contentType` defaults to JSON when there is a body, and `null` sends none. */
  request<T = any>(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; rawBody?: string | Uint8Array; contentType?: string | null },
  ): Promise<HttpAnswer<T>>;
  admin<T = any>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
  service<T = any>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
}

export function httpClient(url: string, tokens: { admin: string; service: string }): HttpClient {
  const request: HttpClient['request'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | Uint8Array | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined && options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/json';
    const response = await fetch(`${url}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: response.status, headers: response.headers, body: parsed as never, text };
  };
  return {
    request,
    admin: (method, path, body) => request(method, path, { token: tokens.admin, body }),
    service: (method, path, body) => request(method, path, { token: tokens.service, body }),
  };
}

export interface TestCoreOptions {
  database?: TestDatabase;
  /** Proxies whose X-Forwarded-For is believed. */
  trustedProxies?: string[];
  streamLeaseTtlSeconds?: number;
  ingestGate?: IngestGate;
  eventStream?: Partial<EventStreamTimings>;
  /** Webhook settings; the tests' defaults allow loopback targets and retry within a fraction of a second. */
  webhooks?: CoreAppOptions['webhooks'];
  /** NATS publishing, as core's runtime gives it with FLEETWIRE_NATS_URL; off when not given. */
  nats?: CoreAppOptions['nats'];
  polling?: {
    adapters?: ReadonlyMap<string, PollAdapter>;
    runner?: Partial<PollRunnerOptions>;
    /** Work the job queue (as a core process does); otherwise tests call `runner.runWorkspace` themselves. */
    work?: boolean;
  };
}

const testRunnerOptions: PollRunnerOptions = {
  connectionConcurrency: 4,
  runDeadlineMs: 20_000,
  maxInlineRetryAfterMs: 2000,
  transientRetries: 2,
};

export async function startTestCore(options: TestCoreOptions = {}): Promise<TestCore> {
  const database = options.database ?? (await createTestDatabase());
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const adminToken = `fwa_test_${randomBytes(24).toString('base64url')}`;
  const serviceToken = `fws_test_${randomBytes(24).toString('base64url')}`;
  const secretKey = randomBytes(32);
  const logger = createLogger({ level: 'debug', name: 'fleetwire-test', destination });
  const jobs = createPollJobQueue(database.db, {
    schema: database.jobSchema,
    expireInSeconds: 30,
    maintenanceIntervalSeconds: 10,
    pollingIntervalSeconds: 0.5,
    concurrency: 2,
    onError: () => undefined,
  });
  await jobs.start();
  const ingestGate = options.ingestGate ?? createIngestGate({ concurrency: 4, queueLimit: 16, retryAfterMs: 1000 });
  const runner = createPollRunner(
    { db: database.db, ingestGate, secretKey, logger, adapters: options.polling?.adapters ?? pollAdapters },
    { ...testRunnerOptions, ...options.polling?.runner },
  );
  if (options.polling?.work) await jobs.work((job) => runner.runWorkspace(job));
  const clock = testClock();
  const events = createEventHub(database.db, { intervalMs: 100, logger });
  await events.start();
  const app = await buildCoreApp({
    events,
    // Tests sweep transitions themselves, at the clock they set.
    transitionSweepMs: false,
    ...(options.eventStream ? { eventStream: options.eventStream } : {}),
    ...(options.nats ? { nats: options.nats } : {}),
    // No jitter, so a test can tell the backoff's growth from scheduling noise.
    webhooks: { allowPrivate: true, scanMs: 100, backoffBaseMs: 50, backoffCapMs: 400, timeoutMs: 2000, random: () => 0.5, ...options.webhooks },
    db: database.db,
    ingestGate,
    jobs,
    logger,
    adminToken,
    serviceToken,
    secretKey,
    clock: clock.now,
    ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
    ...(options.streamLeaseTtlSeconds ? { streamLeaseTtlSeconds: options.streamLeaseTtlSeconds } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    clock,
    app,
    db: database.db,
    database,
    adminToken,
    serviceToken,
    secretKey,
    logs,
    jobs,
    events,
    runner,
    http: httpClient(url, { admin: adminToken, service: serviceToken }),
    close: async () => {
      await events.stop();
      await app.close();
      await jobs.stop();
      if (!options.database) await database.drop();
    },
  };
}
