/**
 * The JSON-RPC methods of the Geotab simulator, as the MyGeotab SDK documents them (guide "Concepts": JSON-RPC,
 * MultiCall, limits; guide "Data feed": GetFeed; shared/reference/provider-wire-formats.md §2): Authenticate,
 * GetVersion, Get of Device, DeviceStatusInfo and Diagnostic (with `search` by id and `resultsLimit`), GetFeed of
 * StatusData, LogRecord, ChargeEvent and Device, and ExecuteMultiCall. Other methods answer
 * MissingMethodException; other entity types of Get and GetFeed answer ArgumentException (UNCONFIRMED which
 * type MyGeotab uses there).
 *
 * Rate limits: Authenticate at most `authenticatePerMinute` per user (MyGeotab: 10 per minute), and, when
 * `feedCallIntervalMs` is set, one GetFeed per entity type per user within it (MyGeotab: one per second), both
 * answered with OverLimitException in the SDK's documented shape and a Retry-After in seconds.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { CanonicalChargingSession } from '../../canonical/update.ts';
import type { FleetModel } from '../fleet-model.ts';
import type { ServedReading } from '../ground-truth.ts';
import { errorTypes, maxResultsLimit, thisServer, type GeotabLogin } from '../../providers/geotab/wire.ts';
import {
  chargeEventPage,
  deviceStatusInfos,
  devices,
  logRecordPage,
  positionOfSeq,
  positionOfVersion,
  statusDataPage,
  versionOf,
  type FeedPage,
  type FleetIndex,
} from './simulator-feeds.ts';
import type { AuthenticateLimit, SimulatedSessions } from './simulator-sessions.ts';

export interface Account {
  login: GeotabLogin;
  fleet: FleetModel;
  index: FleetIndex;
}

export interface Answer {
  body: unknown;
  served: ServedReading[];
  sessions?: CanonicalChargingSession[];
  headers?: Record<string, string>;
}

export interface MethodOptions {
  accounts: Account[];
  sessions: SimulatedSessions;
  authLimit: AuthenticateLimit;
  authenticatePerMinute: number;
  /** 0: GetFeed is not limited. */
  feedCallIntervalMs: number;
  now: () => number;
}

/** What GetVersion answers: a MyGeotab server version string. */
export const simulatedServerVersion = '12.0.0.0';

/** A JSON-RPC error as the official clients read it (`data.type`, `errors[0].name`). */
export function rpcError(type: string, message: string, code = -32000, index = 0): Answer {
  const body = {
    error: { code, name: 'JSONRPCError', message, data: { id: randomUUID(), type, requestIndex: index }, errors: [{ name: type, message }] },
    jsonrpc: '2.0',
  };
  return { body, served: [] };
}

/** OverLimitException exactly as the SDK guide "Concepts" shows it, with Retry-After in seconds. */
export function overLimit(message: string, retryAfterSeconds: number): Answer {
  return {
    body: { error: { message, code: -32000, data: { id: randomUUID(), type: errorTypes.overLimit } }, jsonrpc: '2.0' },
    served: [],
    headers: { 'retry-after': String(retryAfterSeconds) },
  };
}

const result = (value: unknown, served: ServedReading[] = []): Answer => ({ body: { result: value, jsonrpc: '2.0' }, served });

const idSearch = z.object({ id: z.string().optional() }).optional();
const feedParams = z.object({
  typeName: z.string(),
  fromVersion: z.string().optional(),
  search: z.object({ fromDate: z.string().optional() }).optional(),
  resultsLimit: z.number().int().positive().optional(),
});
const getParams = z.object({
  typeName: z.string(),
  search: z.object({ id: z.string().optional(), deviceSearch: idSearch }).optional(),
  resultsLimit: z.number().int().positive().optional(),
});
const authenticateParams = z.object({ database: z.string(), userName: z.string(), password: z.string() });
const multiCallParams = z.object({
  calls: z.array(z.object({ method: z.string().min(1), params: z.record(z.string(), z.unknown()).optional() })).max(1000),
});

/** The diagnostics the simulated fleet reports, as Get Diagnostic lists them (names are the simulator's). */
const diagnostics = [
  { id: 'DiagnosticStateOfChargeId', name: 'Generic state of charge' },
  { id: 'DiagnosticOdometerId', name: 'Odometer' },
  { id: 'DiagnosticOdometerAdjustmentId', name: 'Odometer adjustment' },
  { id: 'DiagnosticJ1939TotalVehicleDistanceId', name: 'J1939 total vehicle distance' },
  { id: 'DiagnosticOBDOdometerReaderId', name: 'OBD odometer' },
  { id: 'DiagnosticElectricVehicleIsChargingId', name: 'Electric vehicle is charging' },
  { id: 'DiagnosticElectricVehicleChargingStateId', name: 'Electric vehicle charging state' },
  { id: 'DiagnosticElectricVehicleBatteryPowerId', name: 'Electric vehicle battery power' },
  { id: 'DiagnosticIgnitionId', name: 'Ignition' },
  { id: 'DiagnosticBatteryTemperatureId', name: 'Battery temperature' },
];

export function createMethods(options: MethodOptions) {
  const { accounts, sessions, authLimit, now } = options;
  const feedCalls = new Map<string, number>();
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
    if (wait !== undefined) return overLimit(`API calls quota exceeded. Maximum admitted ${options.authenticatePerMinute} per 1m.`, wait);
    const account = accounts.find((a) => a.login.database === database && a.login.userName === userName && a.login.password === password);
    if (!account) return rpcError(errorTypes.invalidUser, 'Incorrect login credentials');
    bringUpToDate(account);
    return result({ credentials: sessions.start(database, userName), path: thisServer });
  }

  function accountOf(credentials: unknown): Account | undefined {
    const user = sessions.check(credentials);
    if (!user) return undefined;
    const account = accounts.find((a) => a.login.database === user.database && a.login.userName === user.userName);
    if (account) bringUpToDate(account);
    return account;
  }

  /** Undefined when the call may go ahead (and is counted), else the OverLimitException. */
  function paceFeed(account: Account, typeName: string): { refused?: Answer; headers: Record<string, string> } {
    const interval = options.feedCallIntervalMs;
    if (interval <= 0) return { headers: {} };
    const key = JSON.stringify([account.login.database, account.login.userName, typeName]);
    const last = feedCalls.get(key);
    const at = now();
    if (last !== undefined && at < last + interval) {
      return { refused: overLimit(`API calls quota exceeded. Maximum admitted 1 per ${interval / 1000}s.`, Math.max(1, Math.ceil((last + interval - at) / 1000))), headers: {} };
    }
    feedCalls.set(key, at);
    // The SDK's headers on a rate-limited method's success: the period, what is left of it, and when it resets.
    return { headers: { 'x-rate-limit-limit': `${interval / 1000}s`, 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': new Date(at + interval).toISOString() } };
  }

  function getFeed(account: Account, params: Record<string, unknown>): Answer {
    const parsed = feedParams.safeParse(params);
    if (!parsed.success) return rpcError(errorTypes.argument, 'Invalid GetFeed parameters');
    const { typeName, fromVersion, search, resultsLimit } = parsed.data;
    if (!['StatusData', 'LogRecord', 'ChargeEvent', 'Device'].includes(typeName)) {
      return rpcError(errorTypes.argument, `The simulator has no feed of ${typeName.slice(0, 64)}`);
    }
    const fromPosition = fromVersion === undefined ? positionOfSeq(account.fleet.startSeq) : positionOfVersion(fromVersion);
    if (fromPosition === undefined) return rpcError(errorTypes.argument, 'fromVersion is not a valid version');
    const fromDateMs = fromVersion === undefined && search?.fromDate !== undefined ? Date.parse(search.fromDate) : undefined;
    if (fromDateMs !== undefined && !Number.isFinite(fromDateMs)) return rpcError(errorTypes.argument, 'search.fromDate is not a date');
    const paced = paceFeed(account, typeName);
    if (paced.refused) return paced.refused;
    // MyGeotab clamps a larger limit silently on feeds.
    const query = { fromPosition, fromDateMs, limit: Math.min(resultsLimit ?? maxResultsLimit, maxResultsLimit) };
    const database = account.login.database;
    let page: FeedPage<unknown>;
    if (typeName === 'StatusData') page = statusDataPage(account.index, database, query);
    else if (typeName === 'LogRecord') page = logRecordPage(account.index, database, query);
    else if (typeName === 'ChargeEvent') page = chargeEventPage(account.index, query);
    else page = deviceFeed(account, fromVersion === undefined ? 0 : fromPosition, query.limit);
    return { ...result({ data: page.data, toVersion: page.toVersion }, page.served), sessions: page.sessions, headers: paced.headers };
  }

  /** The Device feed: the fleet's devices in order; the version is the count served. */
  function deviceFeed(account: Account, from: number, limit: number): FeedPage<unknown> {
    const all = devices(account.fleet);
    const data = all.slice(from, from + limit);
    return { data, served: [], toVersion: versionOf(from + data.length) };
  }

  function get(account: Account, params: Record<string, unknown>): Answer {
    const parsed = getParams.safeParse(params);
    if (!parsed.success) return rpcError(errorTypes.argument, 'Invalid Get parameters');
    const { typeName, search, resultsLimit } = parsed.data;
    if (resultsLimit !== undefined && resultsLimit > maxResultsLimit) {
      return overLimit(`Supplied results limit (${resultsLimit}) exceeds maximum limit (${maxResultsLimit}).`, 0);
    }
    const limit = resultsLimit ?? maxResultsLimit;
    if (typeName === 'DeviceStatusInfo') {
      const statuses = deviceStatusInfos(account.index, account.login.database);
      const wanted = search?.deviceSearch?.id;
      const kept = statuses.data.map((s, i) => ({ s, r: statuses.served[i]! })).filter(({ s }) => wanted === undefined || s.device.id === wanted).slice(0, limit);
      return result(
        kept.map(({ s }) => s),
        kept.map(({ r }) => r),
      );
    }
    if (typeName === 'Device') return result(devices(account.fleet).filter((d) => search?.id === undefined || d.id === search.id).slice(0, limit));
    if (typeName === 'Diagnostic') return result(diagnostics.filter((d) => search?.id === undefined || d.id === search.id).slice(0, limit));
    return rpcError(errorTypes.argument, `The simulator cannot Get ${typeName.slice(0, 64)}`);
  }

  /** One call; `index` is its place in a MultiCall (0 outside one). */
  function call(method: string, params: Record<string, unknown>, index = 0): Answer {
    if (method === 'Authenticate') return authenticate(params);
    if (method === 'GetVersion') return result(simulatedServerVersion);
    if (method !== 'GetFeed' && method !== 'Get' && method !== 'ExecuteMultiCall') {
      return rpcError(errorTypes.missingMethod, `The method '${method.slice(0, 64)}' could not be found.`, -32601, index);
    }
    const account = accountOf(params.credentials);
    if (!account) return rpcError(errorTypes.invalidUser, 'Incorrect login credentials', -32000, index);
    if (method === 'GetFeed') return getFeed(account, params);
    if (method === 'Get') return get(account, params);
    return multiCall(params);
  }

  /**
   * ExecuteMultiCall: one credentials for all; the results in order; on the first failure the rest do not run and
   * the error's `requestIndex` says which call failed.
   */
  function multiCall(params: Record<string, unknown>): Answer {
    const parsed = multiCallParams.safeParse(params);
    if (!parsed.success) return rpcError(errorTypes.argument, 'Invalid ExecuteMultiCall parameters');
    const results: unknown[] = [];
    const served: ServedReading[] = [];
    const sessionsServed: CanonicalChargingSession[] = [];
    for (const [i, inner] of parsed.data.calls.entries()) {
      if (inner.method === 'ExecuteMultiCall' || inner.method === 'Authenticate') {
        return rpcError(errorTypes.argument, `${inner.method} cannot be part of a MultiCall`, -32000, i);
      }
      const answer = call(inner.method, { ...inner.params, credentials: params.credentials }, i);
      const body = answer.body as { result?: unknown; error?: { data?: { requestIndex?: number } } };
      if (body.error) {
        if (body.error.data) body.error.data.requestIndex = i;
        return { ...answer, served: [] };
      }
      results.push(body.result);
      served.push(...answer.served);
      sessionsServed.push(...(answer.sessions ?? []));
    }
    return { ...result(results, served), sessions: sessionsServed };
  }

  return { call };
}
