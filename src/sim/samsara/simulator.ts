/**
 * A Samsara API for tests, demos and benchmarks: `GET /fleet/vehicles/stats` (snapshot),
 * `/fleet/vehicles/stats/feed`, `/fleet/vehicles/stats/history` and `/fleet/vehicles` (list), written from the
 * shapes in provider-wire-formats.md §1 and the official SDK's request and response types (@samsarahq/samsara
 * 11.11.1), and checked against that SDK in test/providers/samsara/sdk.test.ts. Bearer tokens select an account and
 * its fleet (accounts sharing a fleet are one organization); every request first advances that fleet to `now()`.
 * Faults come from the FaultInjector, one roll per request.
 *
 * What Samsara documents and this keeps: every documented stat type is accepted (those an electric fleet has no
 * data for come back with no entries), at most three types per call with auxInput3-10 counting as one, at most two
 * decorations, cursors that expire (30 days), and, when configured, the rate limits (simulator-limits.ts).
 *
 * Everything served with a 200 is recorded in the ground truth in canonical terms; a body the client cannot have
 * read (a fault) is not. Not simulated: tag and attribute filters and the `X-Samsara-Version` header (accepted and
 * ignored).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { timestampSchema } from '../../canonical/update.ts';
import { FaultInjector } from '../faults.ts';
import type { FleetModel } from '../fleet-model.ts';
import { GroundTruth } from '../ground-truth.ts';
import type { RunningSimulator, SimulatedAccount, SimulatorListenOptions } from '../simulator.ts';
import { createRateLimiter, type RateLimitSettings } from './simulator-limits.ts';
import {
  ExpiredCursor,
  InvalidCursor,
  feedPage,
  historyPage,
  listBody,
  snapshotBody,
  snapshotPicks,
  vehiclesPage,
  type CursorClock,
  type StatsSelection,
} from './simulator-pages.ts';
import { createLatestIndex, createMotionIndex, isServedType, type LatestIndex, type MotionIndex, type Served } from './simulator-stats.ts';
import {
  countedTypes,
  cursorLifetimeMs,
  isSamsaraDecorationType,
  isSamsaraStatType,
  maxDecorationsPerCall,
  maxTypesPerCall,
  type ErrorBodyOut,
} from '../../providers/samsara/wire.ts';

export interface SamsaraSimulatorOptions extends SimulatorListenOptions {
  accounts: SimulatedAccount<{ apiToken: string }>[];
  /** Log samples (or latest values) per page; default 512, Samsara's usual page cap. */
  pageSize?: number;
  faults?: FaultInjector;
  /** Requests per second per token (a token bucket holding one second's worth); unlimited when absent. */
  rateLimitPerSecond?: number;
  /** Per organization and per endpoint limits besides; `samsaraRateLimits` has Samsara's documented ones. */
  rateLimits?: Omit<RateLimitSettings, 'perTokenPerSecond'>;
  /** How long a cursor stays valid; default Samsara's 30 days. */
  cursorLifetimeMs?: number;
  /** How long a `timeout` fault holds the request before dropping the connection; default 30 s. */
  timeoutMs?: number;
}

interface Account {
  token: string;
  fleet: FleetModel;
  motion: MotionIndex;
  latest: LatestIndex;
}

/** The wait a `rate_limit` fault asks for, in seconds: fractional, as Samsara sends it. */
const faultRetryAfterSeconds = '0.375';

type Failure = { ok: false; status: number; body: ErrorBodyOut; retryAfter?: string };
type Answer = { ok: true; body: unknown; served: Served[] } | Failure;

export async function startSamsaraSimulator(options: SamsaraSimulatorOptions): Promise<RunningSimulator> {
  const now = options.now ?? Date.now;
  const pageSize = options.pageSize ?? 512;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const faults = options.faults ?? new FaultInjector();
  const groundTruth = new GroundTruth();
  const served = { requests: 0 };
  const indexes = new Map<FleetModel, { motion: MotionIndex; latest: LatestIndex }>();
  const accounts = new Map<string, Account>();
  for (const { credentials, fleet } of options.accounts) {
    if (!indexes.has(fleet)) indexes.set(fleet, { motion: createMotionIndex(fleet), latest: createLatestIndex(fleet) });
    accounts.set(credentials.apiToken, { token: credentials.apiToken, fleet, ...indexes.get(fleet)! });
  }
  const limiter = createRateLimiter({ ...options.rateLimits, perTokenPerSecond: options.rateLimitPerSecond }, now);
  const cursorClock = (): CursorClock => ({ nowMs: now(), lifetimeMs: options.cursorLifetimeMs ?? cursorLifetimeMs });
  const held = new Set<NodeJS.Timeout>();

  const app = Fastify({ logger: false, forceCloseConnections: true });

  const route = (path: string, answer: (account: Account, query: Query) => Answer) =>
    app.get(path, async (request, reply) => {
      served.requests += 1;
      const fault = faults.next();
      switch (fault) {
        case 'server_error':
          return send(reply, error(500, 'An internal error occurred.'));
        case 'auth':
          return send(reply, error(401, 'Invalid or expired token.'));
        case 'rate_limit':
          return send(reply, { ...error(429, 'Rate limit exceeded.'), retryAfter: faultRetryAfterSeconds });
        case 'malformed':
          return reply.code(200).type('text/html').send('<html><body><h1>Upstream unavailable</h1></body></html>');
        case 'timeout':
          return hold(request, reply);
        default:
          break;
      }
      const account = accountOf(request);
      if (account) {
        account.fleet.advanceTo(now());
        account.motion.catchUp();
        account.latest.catchUp();
      }
      const result = !account ? error(401, 'Missing or invalid bearer token.') : (throttle(account, path) ?? answer(account, query(request)));
      if (fault === 'truncated') return truncate(request, reply, result.body);
      if (result.ok && account) {
        for (const reading of result.served) groundTruth.record({ ...reading, account: account.token });
      }
      return send(reply, result);
    });

  route('/fleet/vehicles', (account, q) => {
    const limit = q.limit === undefined ? 512 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 512) return error(400, 'Parameter limit must be an integer from 1 to 512.');
    return paged(() => ({ body: vehiclesPage(account.fleet, q.after, limit, cursorClock()), served: [] }));
  });

  route('/fleet/vehicles/stats', (account, q) => {
    // The snapshot takes no decorations (SDK GetVehicleStatsRequest); a stray parameter is ignored, not refused.
    const selection = select(account, { ...q, decorations: undefined });
    if ('ok' in selection) return selection;
    if (q.after) return error(400, 'Invalid pagination cursor.');
    let atMs = now();
    if (q.time !== undefined) {
      const time = timestampSchema.safeParse(q.time);
      if (!time.success) return error(400, 'Parameter time must be an RFC 3339 timestamp.');
      atMs = Date.parse(time.data);
    }
    return ok(snapshotBody(account.fleet, account.motion, selection, snapshotPicks(account.fleet, selection, atMs)));
  });

  route('/fleet/vehicles/stats/feed', (account, q) => {
    const selection = select(account, q);
    if ('ok' in selection) return selection;
    return paged(() => listBody(account.fleet, account.motion, account.latest, selection, feedPage(account.fleet, selection, q.after, pageSize, cursorClock())));
  });

  route('/fleet/vehicles/stats/history', (account, q) => {
    const selection = select(account, q);
    if ('ok' in selection) return selection;
    const start = timestampSchema.safeParse(q.startTime);
    const end = timestampSchema.safeParse(q.endTime);
    if (!start.success || !end.success) return error(400, 'Parameters startTime and endTime are required RFC 3339 timestamps.');
    const range = { startMs: Date.parse(start.data), endMs: Date.parse(end.data) };
    if (range.endMs < range.startMs) return error(400, 'endTime must not be before startTime.');
    return paged(() =>
      listBody(account.fleet, account.motion, account.latest, selection, historyPage(account.fleet, selection, q.after, range, pageSize, cursorClock())),
    );
  });

  app.setNotFoundHandler((_request, reply) => send(reply, error(404, 'Not found.')));
  // Even a simulator bug answers in Samsara's error shape, so the client under test classifies it as it would.
  app.setErrorHandler((_error, _request, reply) => send(reply, error(500, 'An internal error occurred.')));

  function accountOf(request: FastifyRequest): Account | undefined {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    return match ? accounts.get(match[1]!) : undefined;
  }

  function throttle(account: Account, path: string): Answer | undefined {
    const retryAfter = limiter.check(account.token, account.fleet, path);
    return retryAfter === undefined ? undefined : { ...error(429, 'Rate limit exceeded.'), retryAfter };
  }

  /** Holds the request without an answer, then drops the connection, as a stalled upstream does. */
  function hold(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    reply.hijack();
    const socket = request.raw.socket;
    const timer = setTimeout(() => {
      held.delete(timer);
      socket.destroy();
    }, timeoutMs);
    held.add(timer);
    socket.once('close', () => {
      clearTimeout(timer);
      held.delete(timer);
    });
    return reply;
  }

  /** Sends the headers of a complete JSON body and half of it, then closes: the body ends short of its length. */
  function truncate(request: FastifyRequest, reply: FastifyReply, body: unknown): FastifyReply {
    reply.hijack();
    const full = Buffer.from(JSON.stringify(body));
    reply.raw.writeHead(200, { 'content-type': 'application/json', 'content-length': String(full.length) });
    reply.raw.write(full.subarray(0, Math.floor(full.length / 2)));
    request.raw.socket.end();
    return reply;
  }

  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

  let stopped: Promise<void> | undefined;
  return {
    provider: 'samsara',
    url: `http://${urlHost}:${port}`,
    groundTruth,
    faults,
    served,
    stop() {
      stopped ??= (async () => {
        for (const timer of held) clearTimeout(timer);
        held.clear();
        await app.close();
      })();
      return stopped;
    },
  };
}

interface Query {
  types?: string;
  decorations?: string;
  limit?: string;
  vehicleIds?: string;
  after?: string;
  time?: string;
  startTime?: string;
  endTime?: string;
}

/** Query values as strings; a repeated list parameter reads as one comma-separated list. */
function query(request: FastifyRequest): Query {
  const raw = (request.query ?? {}) as Record<string, string | string[] | undefined>;
  const read = (name: keyof Query) => {
    const value = raw[name];
    return Array.isArray(value) ? value.join(',') : value;
  };
  return {
    types: read('types'),
    decorations: read('decorations'),
    limit: read('limit'),
    vehicleIds: read('vehicleIds'),
    after: read('after'),
    time: read('time'),
    startTime: read('startTime'),
    endTime: read('endTime'),
  };
}

const list = (text: string | undefined) => [...new Set((text ?? '').split(',').map((t) => t.trim()).filter((t) => t !== ''))];

/** The `types`, `decorations` and `vehicleIds` of a request, checked as Samsara documents them. */
function select(account: Account, q: Query): StatsSelection | Answer {
  const types = list(q.types);
  if (types.length === 0) return error(400, 'Parameter types is required.');
  const unknown = types.find((t) => !isSamsaraStatType(t));
  if (unknown !== undefined) return error(400, `Invalid stat type: ${unknown.slice(0, 64)}.`);
  if (countedTypes(types) > maxTypesPerCall) {
    return error(400, `At most ${maxTypesPerCall} types may be requested at once (auxInput3-auxInput10 count as one).`);
  }
  const decorations = list(q.decorations);
  if (decorations.length > maxDecorationsPerCall) return error(400, `At most ${maxDecorationsPerCall} decorations may be requested at once.`);
  const badDecoration = decorations.find((t) => !isSamsaraDecorationType(t));
  if (badDecoration !== undefined) return error(400, `Invalid decoration: ${badDecoration.slice(0, 64)}.`);
  let vehicles: Set<number> | undefined;
  if (q.vehicleIds) {
    const ids = new Set(q.vehicleIds.split(',').map((id) => id.trim()));
    vehicles = new Set(account.fleet.vehicles.filter((v) => ids.has(v.samsaraId)).map((v) => v.index));
  }
  // Types Samsara knows but the fleet model does not simulate are accepted and come back without data.
  return {
    types: types.filter(isSamsaraStatType).filter(isServedType),
    vehicles,
    decorations: decorations.filter(isSamsaraStatType).filter(isServedType),
  };
}

function paged(build: () => { body: unknown; served: Served[] }): Answer {
  try {
    return ok(build());
  } catch (cause) {
    if (cause instanceof InvalidCursor) return error(400, 'Invalid pagination cursor.');
    // Samsara documents the 30-day lifetime but not the answer; a 400 is what it gives any cursor it will not take.
    if (cause instanceof ExpiredCursor) return error(400, 'Pagination cursor has expired; start again without after.');
    throw cause;
  }
}

function ok(result: { body: unknown; served: Served[] }): Answer {
  return { ok: true, body: result.body, served: result.served };
}

function error(status: number, message: string): Failure {
  return { ok: false, status, body: { message, requestId: randomUUID() } };
}

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  if (!answer.ok && answer.retryAfter !== undefined) reply.header('retry-after', answer.retryAfter);
  return reply
    .code(answer.ok ? 200 : answer.status)
    .type('application/json')
    .send(JSON.stringify(answer.body));
}
