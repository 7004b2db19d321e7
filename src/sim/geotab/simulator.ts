/**
 * A MyGeotab simulator speaking the JSON-RPC wire format of shared/reference/provider-wire-formats.md §2 on
 * `POST /apiv1`: Authenticate (with the 10-per-minute limit), GetFeed of StatusData and LogRecord with versions,
 * `search.fromDate` and the 50,000 results clamp, Get of DeviceStatusInfo and Device. JSON-RPC errors use the
 * reference's envelope with HTTP 200, as MyGeotab's own mocks do; OverLimitException adds Retry-After.
 *
 * Each request first draws a fault from the FaultInjector, then advances the account's fleet to `now()`. What is
 * served is recorded in the ground truth in canonical terms; a truncated answer never arrives, so it records
 * nothing.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify from 'fastify';
import { z } from 'zod';
import { FaultInjector, type FaultKind } from '../faults.ts';
import type { FleetModel } from '../fleet-model.ts';
import { GroundTruth, type ServedReading } from '../ground-truth.ts';
import type { RunningSimulator, SimulatedAccount, SimulatorListenOptions } from '../simulator.ts';
import { FleetIndex, deviceStatusInfos, devices, logRecordPage, seqOfVersion, statusDataPage } from './simulator-feeds.ts';
import { AuthenticateLimit, SimulatedSessions } from './simulator-sessions.ts';
import { errorTypes, jsonRpcRequestSchema, maxResultsLimit, thisServer, type GeotabLogin } from '../../providers/geotab/wire.ts';

export interface GeotabSimulatorOptions extends SimulatorListenOptions {
  accounts: SimulatedAccount<GeotabLogin>[];
  faults?: FaultInjector;
  /** Default 24 h. */
  sessionTtlMs?: number;
  /** Per user; default 10, as MyGeotab. */
  authenticatePerMinute?: number;
  /** How long a `timeout` fault holds the request before the socket is destroyed; default 15 s. */
  timeoutMs?: number;
}

export interface GeotabSimulator extends RunningSimulator {
  /** Ends every session now: the next call with one gets InvalidUserException. */
  expireSessions(): void;
}

interface Account {
  login: GeotabLogin;
  fleet: FleetModel;
  index: FleetIndex;
}

interface Answer {
  body: unknown;
  served: ServedReading[];
  retryAfterSeconds?: number;
}

const overLimitRetryAfterSeconds = 30;

const feedParams = z.object({
  typeName: z.string(),
  fromVersion: z.string().optional(),
  search: z.object({ fromDate: z.string().optional() }).optional(),
  resultsLimit: z.number().int().positive().optional(),
});
const getParams = z.object({ typeName: z.string() });
const authenticateParams = z.object({ database: z.string(), userName: z.string(), password: z.string() });

function rpcError(type: string, message: string, code = -32000, retryAfterSeconds?: number): Answer {
  const body = {
    error: { code, name: 'JSONRPCError', message, data: { id: randomUUID(), type, requestIndex: 0 }, errors: [{ name: type, message }] },
    jsonrpc: '2.0',
  };
  return { body, served: [], retryAfterSeconds };
}

const result = (value: unknown, served: ServedReading[] = []): Answer => ({ body: { result: value, jsonrpc: '2.0' }, served });

export async function startGeotabSimulator(options: GeotabSimulatorOptions): Promise<GeotabSimulator> {
  const now = options.now ?? Date.now;
  const faults = options.faults ?? new FaultInjector();
  const groundTruth = new GroundTruth();
  const served = { requests: 0 };
  const sessions = new SimulatedSessions(options.sessionTtlMs ?? 24 * 3600_000, now);
  const authLimit = new AuthenticateLimit(options.authenticatePerMinute ?? 10, now);
  const holdMs = options.timeoutMs ?? 15_000;
  const accounts: Account[] = options.accounts.map((a) => ({ login: a.credentials, fleet: a.fleet, index: new FleetIndex(a.fleet) }));
  const hung = new Set<{ timer: NodeJS.Timeout; socket: Socket }>();

  const userKey = (database: string, userName: string) => JSON.stringify([database, userName]);
  const bringUpToDate = (account: Account) => {
    account.fleet.advanceTo(now());
    account.index.catchUp();
  };

  function authenticate(params: Record<string, unknown>): Answer {
    const login = authenticateParams.safeParse(params);
    if (!login.success) return rpcError(errorTypes.invalidUser, 'Incorrect login credentials');
    const { database, userName, password } = login.data;
    const wait = authLimit.take(userKey(database, userName));
    if (wait !== undefined) {
      return rpcError(errorTypes.overLimit, `API calls quota exceeded. Maximum admitted ${options.authenticatePerMinute ?? 10} per 1m.`, -32000, wait);
    }
    const account = accounts.find((a) => a.login.database === database && a.login.userName === userName && a.login.password === password);
    if (!account) return rpcError(errorTypes.invalidUser, 'Incorrect login credentials');
    bringUpToDate(account);
    return result({ credentials: sessions.start(database, userName), path: thisServer });
  }

  function accountOf(params: Record<string, unknown>): Account | undefined {
    const user = sessions.check(params.credentials);
    if (!user) return undefined;
    const account = accounts.find((a) => a.login.database === user.database && a.login.userName === user.userName);
    if (account) bringUpToDate(account);
    return account;
  }

  function getFeed(account: Account, params: Record<string, unknown>): Answer {
    const parsed = feedParams.safeParse(params);
    if (!parsed.success) return rpcError(errorTypes.argument, 'Invalid GetFeed parameters');
    const { typeName, fromVersion, search, resultsLimit } = parsed.data;
    const fromSeq = fromVersion === undefined ? account.fleet.startSeq : seqOfVersion(fromVersion);
    if (fromSeq === undefined) return rpcError(errorTypes.argument, 'fromVersion is not a valid version');
    const fromDateMs = fromVersion === undefined && search?.fromDate !== undefined ? Date.parse(search.fromDate) : undefined;
    if (fromDateMs !== undefined && !Number.isFinite(fromDateMs)) return rpcError(errorTypes.argument, 'search.fromDate is not a date');
    // MyGeotab clamps a larger limit silently on feeds.
    const query = { fromSeq, fromDateMs, limit: Math.min(resultsLimit ?? maxResultsLimit, maxResultsLimit) };
    const database = account.login.database;
    const page =
      typeName === 'StatusData'
        ? statusDataPage(account.index, database, query)
        : typeName === 'LogRecord'
          ? logRecordPage(account.index, database, query)
          : undefined;
    if (!page) return rpcError(errorTypes.argument, `The simulator has no feed of ${typeName.slice(0, 64)}`);
    return result({ data: page.data, toVersion: page.toVersion }, page.served);
  }

  function get(account: Account, params: Record<string, unknown>): Answer {
    const parsed = getParams.safeParse(params);
    if (!parsed.success) return rpcError(errorTypes.argument, 'Invalid Get parameters');
    if (parsed.data.typeName === 'DeviceStatusInfo') {
      const statuses = deviceStatusInfos(account.index, account.login.database);
      return result(statuses.data, statuses.served);
    }
    if (parsed.data.typeName === 'Device') return result(devices(account.fleet));
    return rpcError(errorTypes.argument, `The simulator cannot Get ${parsed.data.typeName.slice(0, 64)}`);
  }

  function answer(text: string): Answer {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return rpcError(errorTypes.jsonSerializer, 'The request is not JSON', -32700);
    }
    const request = jsonRpcRequestSchema.safeParse(json);
    if (!request.success) return rpcError(errorTypes.argument, 'Invalid JSON-RPC request', -32600);
    const params = request.data.params ?? {};
    const { method } = request.data;
    if (method === 'Authenticate') return authenticate(params);
    if (method !== 'GetFeed' && method !== 'Get') {
      return rpcError(errorTypes.missingMethod, `The method '${method.slice(0, 64)}' could not be found.`, -32601);
    }
    const account = accountOf(params);
    if (!account) return rpcError(errorTypes.invalidUser, 'Incorrect login credentials');
    return method === 'GetFeed' ? getFeed(account, params) : get(account, params);
  }

  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1024 * 1024 });
  // Bodies are parsed by the handler, so a broken request gets a JSON-RPC error like MyGeotab's, not Fastify's.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.post('/apiv1', (request, reply) => {
    served.requests += 1;
    const fault: FaultKind | undefined = faults.next();
    const text = typeof request.body === 'string' ? request.body : '';
    const send = (outcome: Answer, body = JSON.stringify(outcome.body)) => {
      if (outcome.retryAfterSeconds !== undefined) reply.header('retry-after', String(outcome.retryAfterSeconds));
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
        return send(rpcError(errorTypes.overLimit, 'API calls quota exceeded. Maximum admitted 60 per 1m.', -32000, overLimitRetryAfterSeconds));
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
        return send(outcome);
      }
    }
  });

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the Geotab simulator has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let stopping: Promise<void> | undefined;
  return {
    provider: 'geotab',
    url: `http://${host}:${address.port}`,
    groundTruth,
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
