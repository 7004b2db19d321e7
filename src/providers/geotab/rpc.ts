/**
 * One MyGeotab JSON-RPC exchange: `POST <server>/apiv1` with `{method, params, id}`, following the MyGeotab SDK
 * guide "Concepts" (JSON-RPC, errors, rate limits) as summarised in shared/reference/provider-wire-formats.md §2.
 *
 * Every failure becomes a ProviderError of the closed taxonomy, except InvalidUserException, which is returned:
 * only the caller knows whether a fresh Authenticate may still help. MyGeotab's mocks answer JSON-RPC errors with
 * HTTP 200 and the real status of some errors is unconfirmed, so an error envelope is read whatever the status.
 * No retries happen here.
 */
import { ProviderError, classifyHttpStatus, parseRetryAfter } from '../provider-error.ts';
import { errorTypeOf, errorTypes, jsonRpcErrorEnvelopeSchema, jsonRpcResultEnvelopeSchema, type JsonRpcError } from './wire.ts';

export interface RpcOptions {
  timeoutMs: number;
  /** The caller's cancellation (the poll run's). */
  signal?: AbortSignal | undefined;
  /** Strings that must never reach an error message (password, session id). */
  secrets: readonly string[];
}

export type RpcOutcome = { kind: 'result'; result: unknown } | { kind: 'invalid_user' };

/** `https://host` or `https://host/apiv1` (a trailing slash or not) to the endpoint URL. */
export function endpointOf(server: string): string {
  const trimmed = server.replace(/\/+$/, '');
  return trimmed.endsWith('/apiv1') ? trimmed : `${trimmed}/apiv1`;
}

export async function postRpc(server: string, method: string, params: Record<string, unknown>, options: RpcOptions): Promise<RpcOutcome> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let status: number;
  let retryAfter: string | null;
  let text: string;
  try {
    const response = await fetch(endpointOf(server), {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=UTF-8', accept: 'application/json' },
      body: JSON.stringify({ method, params, id: 1 }),
      signal,
    });
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    // The timeout covers the body too: a server that sends headers and then stalls is a timeout.
    text = await response.text();
  } catch (error) {
    if (options.signal?.aborted) throw new ProviderError('transient', `Geotab ${method}: cancelled by the caller`);
    if (timeout.aborted) throw new ProviderError('transient', `Geotab ${method}: no answer within ${options.timeoutMs} ms`);
    throw new ProviderError('transient', `Geotab ${method}: network failure (${networkCause(error)})`);
  }
  return readAnswer(method, status, retryAfter, text, options.secrets);
}

function readAnswer(method: string, status: number, retryAfter: string | null, text: string, secrets: readonly string[]): RpcOutcome {
  const ok = status >= 200 && status < 300;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    if (!ok) throw httpFailure(method, status, retryAfter);
    throw new ProviderError('malformed_response', `Geotab ${method}: the answer is not JSON (${text.length} bytes)`);
  }
  const failed = jsonRpcErrorEnvelopeSchema.safeParse(body);
  if (failed.success) return rpcFailure(method, status, retryAfter, failed.data.error, secrets);
  if (!ok) throw httpFailure(method, status, retryAfter);
  const answered = jsonRpcResultEnvelopeSchema.safeParse(body);
  if (!answered.success) {
    throw new ProviderError('malformed_response', `Geotab ${method}: the answer is neither a result nor an error envelope`);
  }
  return { kind: 'result', result: answered.data.result };
}

function httpFailure(method: string, status: number, retryAfter: string | null): ProviderError {
  const errorClass = classifyHttpStatus(status);
  const wait = errorClass === 'rate_limited' || status === 503 ? parseRetryAfter(retryAfter) : undefined;
  return new ProviderError(errorClass, `Geotab ${method}: HTTP ${status}`, wait);
}

function rpcFailure(method: string, status: number, retryAfter: string | null, error: JsonRpcError, secrets: readonly string[]): RpcOutcome {
  const type = errorTypeOf(error) ?? `JSON-RPC error ${error.code}`;
  const message = `Geotab ${method}: ${type}: ${redact(error.message, secrets)}`;
  switch (type) {
    case errorTypes.invalidUser:
      return { kind: 'invalid_user' };
    case errorTypes.overLimit:
      // The same type also reports a results limit above the maximum; the adapter never asks for one.
      throw new ProviderError('rate_limited', message, parseRetryAfter(retryAfter));
    case errorTypes.dbUnavailable:
      throw new ProviderError('transient', message);
    default:
      // An unknown type behind a 5xx is more likely a server fault than a bad request.
      throw new ProviderError(status >= 500 ? 'transient' : 'permanent', message);
  }
}

/** The server's message is echoed into ours; cap it and make sure no secret rides along. */
function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('[redacted]');
  return out.slice(0, 200);
}

function networkCause(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return cause instanceof Error ? cause.name : 'unknown';
}
