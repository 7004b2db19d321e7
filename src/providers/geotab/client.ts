/**
 * The MyGeotab API client: Authenticate, session reuse, and the calls the adapter makes (GetFeed, Get). No
 * mapping. Follows the MyGeotab SDK guides "Concepts" (authentication, `path` redirect, InvalidUserException
 * means re-authenticate once) and "Data feed" (GetFeed, fromVersion/toVersion, resultsLimit), as summarised in
 * shared/reference/provider-wire-formats.md §2.
 *
 * The only retry is the one MyGeotab prescribes: when a call is refused with InvalidUserException (the session
 * expired), authenticate again and repeat the call once. Everything else is the poll runner's decision, by
 * error class. GetFeed is paced to the limit the server declares (MyGeotab: one call per second per entity type)
 * and Authenticate held to ten a minute (pacing.ts), so the client does not trip MyGeotab's rate limits itself.
 */
import type { z } from 'zod';
import { ProviderError } from '../provider-error.ts';
import { noteFeedAnswer, paceFeedCall, realClock, takeAuthenticate, type PacingClock } from './pacing.ts';
import { postRpc, type DeclaredRateLimit } from './rpc.ts';
import { GeotabSession, cachedSession, forgetSession, keepSession, loginKeyOf } from './session.ts';
import {
  authenticateResultSchema,
  feedResultSchema,
  getResultSchema,
  thisServer,
  type FeedResult,
  type FeedTypeName,
  type GeotabLogin,
} from './wire.ts';

export const defaultTimeoutMs = 10_000;

export interface GeotabClientOptions {
  /** Where Authenticate goes (the connection's base URL, e.g. https://my.geotab.com). */
  baseUrl: string;
  login: GeotabLogin;
  /** The PollContext session Map: the session is cached here between runs. */
  session: Map<string, unknown>;
  signal?: AbortSignal;
  /** Per request; combined with `signal`. */
  timeoutMs?: number;
  /** Per answer; default the shared 16 MiB. */
  maxBodyBytes?: number;
  /** The clock the rate limits are kept by; default the real one. */
  clock?: PacingClock;
}

export interface FeedRequest {
  /** The last `toVersion`; omit on the first call. */
  fromVersion?: string | undefined;
  /** Only used by the server when there is no `fromVersion` (RFC 3339 UTC). */
  fromDate?: string | undefined;
  resultsLimit: number;
}

export interface GeotabClient {
  call<T>(method: string, params: Record<string, unknown>, result: z.ZodType<T>): Promise<T>;
  getFeed(typeName: FeedTypeName, request: FeedRequest): Promise<FeedResult>;
  get(typeName: string, params?: { search?: Record<string, unknown>; resultsLimit?: number }): Promise<unknown[]>;
  /** HTTP requests made so far, Authenticate included (for the poll run record). */
  readonly requests: number;
}

export function createGeotabClient(options: GeotabClientOptions): GeotabClient {
  const { baseUrl, login, session: memory } = options;
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const loginKey = loginKeyOf(baseUrl, login.database, login.userName);
  const clock = options.clock ?? realClock;
  let requests = 0;

  const rpc = (server: string, method: string, params: Record<string, unknown>) => {
    requests += 1;
    const held = cachedSession(memory, loginKey);
    const secrets = held ? [login.password, held.credentials.sessionId] : [login.password];
    return postRpc(server, method, params, { timeoutMs, signal: options.signal, secrets, maxBodyBytes: options.maxBodyBytes });
  };

  async function authenticate(): Promise<GeotabSession> {
    forgetSession(memory);
    takeAuthenticate(memory, loginKey, clock.now);
    const outcome = await rpc(baseUrl, 'Authenticate', { database: login.database, userName: login.userName, password: login.password });
    if (outcome.kind === 'invalid_user') {
      throw new ProviderError('auth', `Geotab Authenticate: database ${JSON.stringify(login.database)} refused the user name or password`);
    }
    const answer = readResult('Authenticate', outcome.result, authenticateResultSchema);
    const server = answer.path === thisServer ? baseUrl : serverOfPath(answer.path, baseUrl);
    const session = new GeotabSession(loginKey, answer.credentials, server);
    keepSession(memory, session);
    return session;
  }

  /**
   * `pace.before` runs before each attempt (a retried GetFeed counts against the per-entity limit too) and
   * `pace.after` gets the limit the answer declared.
   */
  async function call<T>(
    method: string,
    params: Record<string, unknown>,
    result: z.ZodType<T>,
    pace?: { before: () => Promise<void>; after: (declared: DeclaredRateLimit | undefined) => void },
  ): Promise<T> {
    let session = cachedSession(memory, loginKey) ?? (await authenticate());
    await pace?.before();
    let outcome = await rpc(session.server, method, { ...params, credentials: session.credentials });
    if (outcome.kind === 'invalid_user') {
      session = await authenticate();
      await pace?.before();
      outcome = await rpc(session.server, method, { ...params, credentials: session.credentials });
      if (outcome.kind === 'invalid_user') {
        forgetSession(memory);
        throw new ProviderError('auth', `Geotab ${method}: InvalidUserException again right after a fresh Authenticate`);
      }
    }
    pace?.after(outcome.rateLimit);
    return readResult(method, outcome.result, result);
  }

  async function getFeed(typeName: FeedTypeName, request: FeedRequest): Promise<FeedResult> {
    const params = {
      typeName,
      ...(request.fromVersion !== undefined
        ? { fromVersion: request.fromVersion }
        : request.fromDate !== undefined
          ? { search: { fromDate: request.fromDate } }
          : {}),
      resultsLimit: request.resultsLimit,
    };
    return call('GetFeed', params, feedResultSchema, {
      before: () => paceFeedCall(memory, typeName, clock, options.signal),
      after: (declared) => noteFeedAnswer(memory, typeName, declared),
    });
  }

  return {
    call,
    getFeed,
    get: (typeName, params = {}) => call('Get', { typeName, ...params }, getResultSchema),
    get requests() {
      return requests;
    },
  };
}

function readResult<T>(method: string, result: unknown, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(result);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new ProviderError('malformed_response', `Geotab ${method}: unexpected result shape${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/**
 * `path` names the host that serves the database from now on (legacy redirect), a bare host in practice. The
 * scheme stays the configured one, so a redirect can never downgrade an HTTPS connection to plain HTTP (a
 * plain-HTTP base URL is a local simulator).
 */
function serverOfPath(path: string, baseUrl: string): string {
  const host = path.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  if (!/^[a-z0-9.-]+(:\d{1,5})?$/i.test(host)) {
    throw new ProviderError('malformed_response', 'Geotab Authenticate: path is neither ThisServer nor a host name');
  }
  const scheme = /^http:\/\//i.test(baseUrl) ? 'http' : 'https';
  return `${scheme}://${host}`;
}
