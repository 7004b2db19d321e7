/**
 * Core's HTTP application. Plugins load in a fixed order: schema compilers, the API description, the error
 * mapper, authentication, then the routes. Tests build it with an open database and call it with real HTTP or
 * `inject`.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { ingestLimits } from '../../canonical/update.ts';
import { defaultBackfillLookbackHours } from '../../config.ts';
import type { Logger } from '../../logging.ts';
import type { HistoryAdapter } from '../../providers/history-adapter.ts';
import { historyAdapters } from '../../providers/registry.ts';
import { isDatabaseUnavailable, type Database } from '../db/database.ts';
import type { PollJobQueue } from '../polling/job-queue.ts';
import { IngestOverloadedError, type IngestGate } from '../ingest/ingest-gate.ts';
import { DomainError } from '../errors.ts';
import { loadWorkspaceHealth } from '../health/health-queries.ts';
import { httpRequestSeconds, observeHealthFrom, observeNatsFrom, observeWebhooksFrom } from '../metrics.ts';
import { installAuth, type ClientLimits } from './auth.ts';
import { parseJsonBody } from './json-body.ts';
import { HttpProblem, problem, problemContentType } from './problem.ts';
import { registerBackfillRoutes } from './routes/backfills.ts';
import { registerConnectionRoutes } from './routes/connections.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerDiscoveredDeviceRoutes } from './routes/discovered-devices.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerIngestRoutes } from './routes/ingest.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import { registerPollingRoutes } from './routes/polling.ts';
import { registerProviderRoutes } from './routes/providers.ts';
import { registerEventRoutes, type EventStreamTimings } from './routes/events.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { createWebhookDispatcher, type WebhookDispatcherOptions } from '../events/webhook-dispatcher.ts';
import { webhookStates } from '../events/webhooks.ts';
import { createTransitionSweeper } from '../events/transition-sweeper.ts';
import { createEventHub, type EventHub } from '../events/event-hub.ts';
import { natsBacklog } from '../events/nats-cursor.ts';
import { createNatsPublisher, type NatsPublisherOptions } from '../events/nats-publisher.ts';
import { registerRejectionRoutes } from './routes/rejections.ts';
import { registerStreamRoutes } from './routes/streams.ts';
import { registerVehicleRoutes } from './routes/vehicles.ts';
import { registerWorkspaceRoutes } from './routes/workspaces.ts';

export interface CoreAppOptions {
  db: Database;
  /** Load shedding for ingest, shared with the poll runner. */
  ingestGate: IngestGate;
  /** The shared poll job queue (started by the caller). */
  jobs: PollJobQueue;
  logger: Logger;
  adminToken: string;
  serviceToken: string;
  secretKey: Buffer;
  /** The clock freshness and the ingest time rules are judged by, in ms; injectable for tests. */
  clock?: () => number;
  /** Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client; none by default. */
  trustedProxies?: readonly string[];
  /** How long a stream lease lasts unless renewed. */
  streamLeaseTtlSeconds?: number;
  /** Per-client limits of public routes and of unknown tokens. */
  clientLimits?: Partial<ClientLimits>;
  /**
   * The process's view of the event log; made here (and started and stopped with the app) when not given. A caller
   * that gives one starts and stops it.
   */
  events?: EventHub;
  /** Heartbeat, slow-client limit and buffer of the SSE event stream. */
  eventStream?: Partial<EventStreamTimings>;
  /**
   * Webhooks: whether private, loopback and link-local targets are allowed (FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE), and
   * the dispatcher's settings; `deliver: false` serves the routes without delivering from this process.
   */
  webhooks?: { allowPrivate?: boolean; deliver?: boolean; holder?: string } & Partial<Omit<WebhookDispatcherOptions, 'db' | 'secretKey' | 'hub' | 'logger' | 'holder' | 'allowPrivate'>>;
  /** Publishing every event to NATS JetStream (FLEETWIRE_NATS_URL) from this process; off when not given. */
  nats?: { holder?: string } & Omit<NatsPublisherOptions, 'db' | 'hub' | 'logger' | 'holder'>;
  /** What the dashboard page is told: the map's tile URL template and its credit (none: a plain background). */
  dashboard?: { tileUrl?: string | undefined; tileAttribution?: string | undefined };
  /** How often freshness and connection-health transitions are swept into events; `false` leaves it to the caller. */
  transitionSweepMs?: number | false;
  /**
   * Backfill: how far before a binding a new device is backfilled, the longest period one request may cover, and
   * the providers' history paths (the registry's by default).
   */
  backfill?: { lookbackHours?: number; maxRangeDays?: number; adapters?: ReadonlyMap<string, HistoryAdapter> };
}

/** A stream lease lives this long unless renewed; stream processes renew it every third of it. */
export const defaultStreamLeaseTtlSeconds = 30;

const domainStatus: Record<DomainError['kind'], number> = { invalid: 400, not_found: 404, conflict: 409, unavailable: 503 };

export async function buildCoreApp(options: CoreAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // Requests are logged once, on response, with OpenTelemetry field names (the onResponse hook below).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'http.request.id' }),
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    bodyLimit: 1024 * 1024,
    // Retries of failed requests by clients must not pile up on a dead socket.
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    // Only a configured proxy may say who the client is; anyone else's X-Forwarded-For is ignored.
    trustProxy: options.trustedProxies && options.trustedProxies.length > 0 ? [...options.trustedProxies] : false,
  });
  const clock = options.clock ?? Date.now;

  // JSON only: a body of another type (text/plain included) is answered 415, and a JSON body is read by our own
  // parser, which says what is wrong with it (not JSON, or a key that would reach an object's prototype).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    try {
      done(null, parseJsonBody(text as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Fleetwire API',
        version: '1',
        description: 'Telematics ingestion for electric fleets: workspaces, connections, vehicles, snapshot, history, ingest.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const instance = request.url.split('?')[0];
    // Zod's schema errors and those of a route's own validator alike.
    if (Array.isArray(error.validation)) {
      const errors = error.validation.map((issue) => ({
        path: `${error.validationContext ?? 'request'}${issue.instancePath.replace(/\//g, '.')}`,
        message: issue.message ?? 'invalid',
      }));
      return reply
        .code(400)
        .type(problemContentType)
        .send(problem(400, 'validation_failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { instance, errors }));
    }
    if (error instanceof IngestOverloadedError) {
      return reply
        .code(503)
        .header('retry-after', String(Math.ceil(error.retryAfterMs / 1000)))
        .type(problemContentType)
        .send(problem(503, 'overloaded', 'the ingest handler is at capacity; retry after the time in Retry-After', { instance }));
    }
    if (error instanceof HttpProblem) {
      return reply.code(error.status).type(problemContentType).send(problem(error.status, error.code, error.message, { instance }));
    }
    if (error instanceof DomainError) {
      const status = domainStatus[error.kind];
      return reply
        .code(status)
        .type(problemContentType)
        .send(problem(status, error.code, error.message, { instance, ...(error.reasons ? { reasons: [...error.reasons] } : {}) }));
    }
    const status = error.statusCode ?? 500;
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).type(problemContentType).send(problem(413, 'payload_too_large', 'the request body is larger than this route accepts', { instance }));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).type(problemContentType).send(problem(415, 'unsupported_media_type', 'send application/json', { instance }));
    }
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.code(400).type(problemContentType).send(problem(400, 'invalid_json', 'the request body is not valid JSON', { instance }));
    }
    if (status >= 400 && status < 500) {
      return reply.code(status).type(problemContentType).send(problem(status, 'bad_request', error.message, { instance }));
    }
    if (isDatabaseUnavailable(error)) {
      // The caller may try again: a stream process retries the batch instead of taking it for refused.
      request.log.warn({ err: error, 'http.route': request.routeOptions.url }, 'database unavailable');
      return reply.code(503).header('retry-after', '2').type(problemContentType).send(problem(503, 'database_unavailable', 'the database is unreachable; retry after the time in Retry-After', { instance }));
    }
    request.log.error({ err: error, 'http.route': request.routeOptions.url }, 'request failed');
    return reply.code(500).type(problemContentType).send(problem(500, 'internal_error', 'the server failed to answer; the error is logged', { instance }));
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).type(problemContentType).send(problem(404, 'route_not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  // Answers are JSON (or the dashboard's files): never sniffed; anything behind a token is never cached.
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (request.routeOptions.config?.access !== 'public' && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    httpRequestSeconds.observe(
      { http_request_method: request.method, http_route: route, http_response_status_code: String(reply.statusCode) },
      seconds,
    );
    const level = reply.statusCode >= 500 ? 'error' : route === '/internal/v1/ingest' || route === '/metrics' || route.startsWith('/healthz') || route.startsWith('/readyz') ? 'debug' : 'info';
    request.log[level](
      {
        'http.request.method': request.method,
        'http.route': route,
        'url.path': request.url.split('?')[0],
        'http.response.status_code': reply.statusCode,
        'http.server.request.duration': seconds,
        'client.address': request.ip,
      },
      'request served',
    );
  });

  await installAuth(app, { db: options.db, adminToken: options.adminToken, serviceToken: options.serviceToken, limits: options.clientLimits ?? {} });
  observeHealthFrom(() => loadWorkspaceHealth(options.db, 'all', clock()));

  const typed = app.withTypeProvider<ZodTypeProvider>();
  registerOpsRoutes(typed, { db: options.db, secretKey: options.secretKey, ...(options.nats?.subjectPrefix ? { natsSubjectPrefix: options.nats.subjectPrefix } : {}) });
  registerWorkspaceRoutes(typed, { db: options.db, clock });
  registerConnectionRoutes(typed, { db: options.db, secretKey: options.secretKey });
  registerProviderRoutes(typed);
  const backfill = options.backfill ?? {};
  registerVehicleRoutes(typed, { db: options.db, clock, backfillLookbackMs: (backfill.lookbackHours ?? defaultBackfillLookbackHours) * 3600_000 });
  registerBackfillRoutes(typed, { db: options.db, clock, adapters: backfill.adapters ?? historyAdapters, maxRangeDays: backfill.maxRangeDays ?? 31 });
  registerRejectionRoutes(typed, { db: options.db });
  registerDiscoveredDeviceRoutes(typed, { db: options.db, binding: { backfillLookbackMs: (backfill.lookbackHours ?? defaultBackfillLookbackHours) * 3600_000 } });
  const hub = options.events ?? createEventHub(options.db, { logger: options.logger });
  if (!options.events) {
    app.addHook('onReady', async () => hub.start());
    // Before the server waits for its connections to end: the event streams end first.
    app.addHook('preClose', async () => hub.stop());
  }
  registerEventRoutes(typed, { db: options.db, hub, ...(options.eventStream ? { timings: options.eventStream } : {}) });
  const { allowPrivate = false, deliver = true, holder = `core-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`, ...dispatch } = options.webhooks ?? {};
  registerWebhookRoutes(typed, { db: options.db, secretKey: options.secretKey, allowPrivate, clock });
  observeWebhooksFrom(() => webhookStates(options.db));
  if (options.transitionSweepMs !== false) {
    const sweeper = createTransitionSweeper({ db: options.db, clock, logger: options.logger, ...(options.transitionSweepMs ? { intervalMs: options.transitionSweepMs } : {}) });
    app.addHook('onReady', async () => sweeper.start());
    app.addHook('preClose', async () => sweeper.stop());
  }
  if (deliver) {
    const dispatcher = createWebhookDispatcher({ db: options.db, secretKey: options.secretKey, hub, logger: options.logger, holder, allowPrivate, ...dispatch });
    app.addHook('onReady', async () => dispatcher.start());
    app.addHook('preClose', async () => dispatcher.stop());
  }
  if (options.nats) {
    const { stream } = options.nats;
    const publisher = createNatsPublisher({ db: options.db, hub, logger: options.logger, ...options.nats, holder: options.nats.holder ?? holder });
    observeNatsFrom(async () => ({ stream, backlog: await natsBacklog(options.db, stream) }));
    app.addHook('onReady', async () => publisher.start());
    app.addHook('preClose', async () => publisher.stop());
  }
  registerHealthRoutes(typed, { db: options.db, clock });
  registerDashboardRoutes(typed, options.dashboard ?? {});
  registerIngestRoutes(typed, { db: options.db, gate: options.ingestGate, bodyLimit: ingestLimits.bodyBytes, clock });
  registerPollingRoutes(typed, { db: options.db, jobs: options.jobs, clock });
  registerStreamRoutes(typed, { db: options.db, secretKey: options.secretKey, leaseTtlSeconds: options.streamLeaseTtlSeconds ?? defaultStreamLeaseTtlSeconds });

  await app.ready();
  return app;
}
