/**
 * A MyGeotab simulator speaking the JSON-RPC wire format of shared/reference/provider-wire-formats.md §2 on
 * `POST /apiv1` and `POST /apiv1/` (mg-api-js always posts with the trailing slash), with the body as JSON or as
 * the form field `JSON-RPC=<json>` (mg-api-node's form-encoded posts). The methods are in simulator-methods.ts.
 * JSON-RPC errors use the reference's envelope with HTTP 200, as MyGeotab's own mocks do; OverLimitException adds
 * Retry-After.
 *
 * Each request first draws a fault from the FaultInjector, then advances the account's fleet to `now()`. What is
 * served is recorded in the ground truth in canonical terms (readings, and the charging sessions of ChargeEvents);
 * a truncated answer never arrives, so it records nothing. With `tls` it serves HTTPS (mg-api-js speaks nothing
 * else).
 */
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { CanonicalChargingSession } from '../../canonical/update.ts';
import { FaultInjector, type FaultKind } from '../faults.ts';
import { GroundTruth } from '../ground-truth.ts';
import type { RunningSimulator, SimulatedAccount, SimulatorListenOptions } from '../simulator.ts';
import { FleetIndex } from './simulator-feeds.ts';
import { createMethods, overLimit, rpcError, type Account, type Answer } from './simulator-methods.ts';
import { AuthenticateLimit, SimulatedSessions } from './simulator-sessions.ts';
import { errorTypes, jsonRpcRequestSchema, type GeotabLogin } from '../../providers/geotab/wire.ts';

export interface GeotabSimulatorOptions extends SimulatorListenOptions {
  accounts: SimulatedAccount<GeotabLogin>[];
  faults?: FaultInjector;
  /** Default 24 h. */
  sessionTtlMs?: number;
  /** Per user; default 10, as MyGeotab. */
  authenticatePerMinute?: number;
  /**
   * GetFeed calls of one entity type per user at least this far apart, else OverLimitException: MyGeotab's is
   * 1000 (one per second), as `fleetwire sim` and the demo run it. Default 0, no limit: a test whose clock stands
   * still could never page.
   */
  feedCallIntervalMs?: number;
  /** How long a `timeout` fault holds the request before the socket is destroyed; default 15 s. */
  timeoutMs?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export interface GeotabSimulator extends RunningSimulator {
  /** Ends every session now: the next call with one gets InvalidUserException. */
  expireSessions(): void;
  /** The charging sessions of every ChargeEvent served, by id, in canonical terms (the simulator's arithmetic). */
  readonly servedChargingSessions: Map<string, CanonicalChargingSession>;
}

const overLimitRetryAfterSeconds = 30;

/** The JSON-RPC text of a request body: JSON as sent, or the `JSON-RPC` field of a form-encoded body. */
export function rpcTextOf(body: string, contentType: string | undefined): string {
  if (/application\/x-www-form-urlencoded/i.test(contentType ?? '') || /^JSON-RPC=/.test(body)) {
    return new URLSearchParams(body).get('JSON-RPC') ?? '';
  }
  return body;
}

export async function startGeotabSimulator(options: GeotabSimulatorOptions): Promise<GeotabSimulator> {
  const now = options.now ?? Date.now;
  const faults = options.faults ?? new FaultInjector();
  const groundTruth = new GroundTruth();
  const servedChargingSessions = new Map<string, CanonicalChargingSession>();
  const served = { requests: 0 };
  const sessions = new SimulatedSessions(options.sessionTtlMs ?? 24 * 3600_000, now);
  const authenticatePerMinute = options.authenticatePerMinute ?? 10;
  const authLimit = new AuthenticateLimit(authenticatePerMinute, now);
  const holdMs = options.timeoutMs ?? 15_000;
  const accounts: Account[] = options.accounts.map((a) => ({ login: a.credentials, fleet: a.fleet, index: new FleetIndex(a.fleet) }));
  const hung = new Set<{ timer: NodeJS.Timeout; socket: Socket }>();
  const methods = createMethods({ accounts, sessions, authLimit, authenticatePerMinute, feedCallIntervalMs: options.feedCallIntervalMs ?? 0, now });

  function answer(text: string): Answer {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return rpcError(errorTypes.jsonSerializer, 'The request is not JSON', -32700);
    }
    const request = jsonRpcRequestSchema.safeParse(json);
    if (!request.success) return rpcError(errorTypes.argument, 'Invalid JSON-RPC request', -32600);
    return methods.call(request.data.method, request.data.params ?? {});
  }

  const app: FastifyInstance = (
    options.tls
      ? Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1024 * 1024, https: { key: options.tls.key, cert: options.tls.cert } })
      : Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1024 * 1024 })
  ) as FastifyInstance;
  // Bodies are parsed by the handler, so a broken request gets a JSON-RPC error like MyGeotab's, not Fastify's.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  const handler = (request: FastifyRequest, reply: FastifyReply) => {
    served.requests += 1;
    const fault: FaultKind | undefined = faults.next();
    const text = rpcTextOf(typeof request.body === 'string' ? request.body : '', request.headers['content-type']);
    const send = (outcome: Answer, body = JSON.stringify(outcome.body)) => {
      for (const [name, value] of Object.entries(outcome.headers ?? {})) reply.header(name, value);
      return reply.code(200).type('application/json; charset=utf-8').send(body);
    };
    switch (fault) {
      case 'server_error':
        return reply.code(500).type('text/html').send('<html><body><h1>500 Internal Server Error</h1></body></html>');
      case 'malformed':
        return reply.code(200).type('application/json; charset=utf-8').send('<html><body>Service temporarily unavailable</body></html>');
      case 'auth':
        return send(rpcError(errorTypes.invalidUser, 'Incorrect login credentials'));
      case 'rate_limit':
        return send(overLimit('API calls quota exceeded. Maximum admitted 60 per 1m.', overLimitRetryAfterSeconds));
      case 'timeout': {
        reply.hijack();
        const socket = request.raw.socket;
        const entry = {
          socket,
          timer: setTimeout(() => {
            hung.delete(entry);
            socket.destroy();
          }, holdMs),
        };
        hung.add(entry);
        return reply;
      }
      case 'truncated': {
        // The client never receives a whole answer, so nothing of it counts as served.
        const full = JSON.stringify(answer(text).body);
        return send({ body: null, served: [] }, full.slice(0, Math.floor(full.length / 2)));
      }
      case undefined: {
        const outcome = answer(text);
        for (const reading of outcome.served) groundTruth.record(reading);
        for (const session of outcome.sessions ?? []) servedChargingSessions.set(session.externalId, session);
        return send(outcome);
      }
    }
  };
  app.post('/apiv1', handler);
  app.post('/apiv1/', handler);

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the Geotab simulator has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let stopping: Promise<void> | undefined;
  return {
    provider: 'geotab',
    url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}`,
    groundTruth,
    servedChargingSessions,
    faults,
    served,
    expireSessions: () => sessions.expireAll(),
    stop() {
      stopping ??= (async () => {
        for (const entry of hung) {
          clearTimeout(entry.timer);
          entry.socket.destroy();
        }
        hung.clear();
        await app.close();
      })();
      return stopping;
    },
  };
}
