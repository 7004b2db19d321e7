/**
 * One MyGeotab JSON-RPC exchange: `POST <server>/apiv1` with `{method, params, id}`, following the MyGeotab SDK
 * guide "Concepts" (JSON-RPC, errors, rate limits) as summarised in shared/reference/provider-wire-formats.md §2.
 *
 * Every failure becomes a ProviderError of the closed taxonomy, except InvalidUserException, which is returned:
 * only the caller knows whether a fresh Authenticate may still help. MyGeotab's mocks answer JSON-RPC errors with
 * HTTP 200 and the real status of some errors is unconfirmed, so an error envelope is read whatever the status.
 * No retries happen here.
 */
import { ProviderError, parseRetryAfter } from '../provider-error.ts';
import { providerFetch, redact, statusError, type ProviderAnswer } from '../provider-http.ts';
import { errorTypeOf, errorTypes, jsonRpcErrorEnvelopeSchema, jsonRpcResultEnvelopeSchema, type JsonRpcError } from './wire.ts';

export interface RpcOptions {
  timeoutMs: number;
  /** The caller's cancellation (the poll run's). */
  signal?: AbortSignal | undefined;
  /** Strings that must never reach an error message (password, session id). */
  secrets: readonly string[];
  /** Per answer; default the shared 16 MiB. */
  maxBodyBytes?: number | undefined;
}

/**
 * The limit a successful answer declares (SDK "Concepts", rate limits: `X-Rate-Limit-Limit` is the period, e.g.
 * `1s` or `1m`; `X-Rate-Limit-Remaining` the calls left in it), when the server applies one to the method.
 */
export interface DeclaredRateLimit {
  periodMs: number;
  remaining: number;
}

export type RpcOutcome = { kind: 'result'; result: unknown; rateLimit?: DeclaredRateLimit } | { kind: 'invalid_user' };

const periodUnits: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** The X-Rate-Limit headers of an answer, or undefined when absent or unreadable. */
export function declaredRateLimitOf(headers: Headers): DeclaredRateLimit | undefined {
  const period = /^\s*(\d+)\s*([smhd])\s*$/i.exec(headers.get('x-rate-limit-limit') ?? '');
  const remaining = Number(headers.get('x-rate-limit-remaining') ?? Number.NaN);
  if (!period || !Number.isInteger(remaining)) return undefined;
  return { periodMs: Number(period[1]) * periodUnits[period[2]!.toLowerCase()]!, remaining };
}

/** `https://host` or `https://host/apiv1` (a trailing slash or not) to the endpoint URL. */
export function endpointOf(server: string): string {
  const trimmed = server.replace(/\/+$/, '');
  return trimmed.endsWith('/apiv1') ? trimmed : `${trimmed}/apiv1`;
}

export async function postRpc(server: string, method: string, params: Record<string, unknown>, options: RpcOptions): Promise<RpcOutcome> {
  const answer = await providerFetch({
    url: endpointOf(server),
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=UTF-8', accept: 'application/json' },
    body: JSON.stringify({ method, params, id: 1 }),
    what: `Geotab ${method}`,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    maxBodyBytes: options.maxBodyBytes,
    secrets: options.secrets,
  });
  return readAnswer(method, answer, options.secrets);
}

function readAnswer(method: string, answer: ProviderAnswer, secrets: readonly string[]): RpcOutcome {
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    if (!answer.ok) throw statusError(`Geotab ${method}`, answer, secrets);
    throw new ProviderError('malformed_response', `Geotab ${method}: the answer is not JSON (${answer.text.length} bytes)`);
  }
  const failed = jsonRpcErrorEnvelopeSchema.safeParse(body);
  if (failed.success) return rpcFailure(method, answer, failed.data.error, secrets);
  if (!answer.ok) throw statusError(`Geotab ${method}`, answer, secrets);
  const answered = jsonRpcResultEnvelopeSchema.safeParse(body);
  if (!answered.success) {
    throw new ProviderError('malformed_response', `Geotab ${method}: the answer is neither a result nor an error envelope`);
  }
  const rateLimit = declaredRateLimitOf(answer.headers);
  return rateLimit ? { kind: 'result', result: answered.data.result, rateLimit } : { kind: 'result', result: answered.data.result };
}

function rpcFailure(method: string, answer: ProviderAnswer, error: JsonRpcError, secrets: readonly string[]): RpcOutcome {
  const type = errorTypeOf(error) ?? `JSON-RPC error ${error.code}`;
  // The server's type and message are echoed into ours: the message capped after redaction (so the cap cannot
  // leave half a secret behind), then the whole line redacted for the type.
  const message = redact(`Geotab ${method}: ${type}: ${redact(error.message, secrets).slice(0, 200)}`, secrets);
  switch (type) {
    case errorTypes.invalidUser:
      return { kind: 'invalid_user' };
    case errorTypes.overLimit:
      // The same type also reports a results limit above the maximum; the adapter never asks for one.
      throw new ProviderError('rate_limited', message, parseRetryAfter(answer.headers.get('retry-after')));
    case errorTypes.dbUnavailable:
      throw new ProviderError('transient', message);
    default:
      // An unknown type behind a 5xx is more likely a server fault than a bad request.
      throw new ProviderError(answer.status >= 500 ? 'transient' : 'permanent', message);
  }
}
