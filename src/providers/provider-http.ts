/**
 * The one way a provider client talks HTTP (WHATWG Fetch as Node's undici implements it). Whatever the provider,
 * or anything else answering at its base URL, does, a request made here:
 * - ends within its timeout, which covers the headers and the whole body, or when the caller aborts;
 * - never follows a redirect: the request carries a token or a password, and a redirect would hand it to
 *   whoever the Location names;
 * - never holds more than its size cap of body in memory;
 * - fails only with a ProviderError whose message carries no secret, no query string and no request body.
 * What a status or an error body means stays with each client: that part is vendor-specific.
 */
import { ProviderError, classifyHttpStatus, parseRetryAfter, type ProviderErrorClass } from './provider-error.ts';

/** Room for a Samsara or Geotab page and a Traccar device list many times over; more is a misbehaving server. */
export const defaultMaxBodyBytes = 16 * 1024 * 1024;

export interface ProviderRequest {
  url: string | URL;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /**
   * Starts every message, e.g. "Samsara GET /fleet/vehicles/stats/feed". Never the URL itself: its query can
   * carry vehicle ids or a token.
   */
  what: string;
  /** From sending to the last body byte. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Default {@link defaultMaxBodyBytes}; counted after content decoding, so a compressed bomb stops too. */
  maxBodyBytes?: number | undefined;
  /** Strings no message may carry (token, password, session id), even when the server echoes them. */
  secrets: readonly string[];
}

export interface ProviderAnswer {
  status: number;
  /** A 2xx status. */
  ok: boolean;
  headers: Headers;
  text: string;
}

export async function providerFetch(request: ProviderRequest): Promise<ProviderAnswer> {
  const { what, timeoutMs, secrets, signal: caller } = request;
  const maxBodyBytes = request.maxBodyBytes ?? defaultMaxBodyBytes;
  const fail = (errorClass: ProviderErrorClass, detail: string) => new ProviderError(errorClass, redact(`${what}: ${detail}`, secrets));

  // One controller of our own, rather than AbortSignal.any: it also lets us drop the connection at the size cap,
  // and leaves no listener behind on a caller signal that lives as long as a stream connection.
  const controller = new AbortController();
  let stoppedBy: 'timeout' | 'caller' | undefined;
  const stop = (by: 'timeout' | 'caller') => {
    stoppedBy ??= by;
    controller.abort();
  };
  const onCallerAbort = () => stop('caller');
  const timer = setTimeout(() => stop('timeout'), timeoutMs);
  if (caller?.aborted) onCallerAbort();
  else caller?.addEventListener('abort', onCallerAbort, { once: true });
  const interrupted = (): ProviderError | undefined => {
    if (stoppedBy === 'caller') return fail('transient', 'cancelled (the caller aborted)');
    if (stoppedBy === 'timeout') return fail('transient', `timed out, no answer within ${timeoutMs} ms`);
    return undefined;
  };

  try {
    let response: Response;
    try {
      response = await fetch(request.url, {
        method: request.method ?? 'GET',
        headers: request.headers,
        body: request.body,
        redirect: 'manual',
        signal: controller.signal,
      });
    } catch (error) {
      throw interrupted() ?? fail('transient', `network error (${failureKind(error)})`);
    }

    if (response.status >= 300 && response.status < 400) {
      controller.abort();
      throw fail('permanent', `answered ${response.status}, a redirect, which is never followed; check the base URL`);
    }
    const declared = Number(response.headers.get('content-length'));
    if (declared > maxBodyBytes) {
      controller.abort();
      throw fail('malformed_response', `declares ${declared} bytes, over the ${sizeLabel(maxBodyBytes)} cap; not read`);
    }

    const text = await readText(response, maxBodyBytes).catch((error: unknown) => {
      // Headers arrived, then the body stopped short: what we have cannot be read.
      throw interrupted() ?? fail('malformed_response', `body ended early (${failureKind(error)})`);
    });
    if (text === undefined) {
      controller.abort();
      throw fail('malformed_response', `body exceeds the ${sizeLabel(maxBodyBytes)} cap; stopped reading`);
    }
    return { status: response.status, ok: response.status >= 200 && response.status < 300, headers: response.headers, text };
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

/** A non-2xx answer: the class from the status, and the wait from Retry-After where HTTP gives it a meaning. */
export function statusError(what: string, answer: ProviderAnswer, secrets: readonly string[], detail = ''): ProviderError {
  const errorClass = classifyHttpStatus(answer.status);
  const retryAfterMs = errorClass === 'rate_limited' || answer.status === 503 ? parseRetryAfter(answer.headers.get('retry-after')) : undefined;
  return new ProviderError(errorClass, redact(`${what}: answered ${answer.status}${detail}`, secrets), retryAfterMs);
}

/** Any text on its way into a message: a server can echo a token or a password back. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is hidden whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/** The body as text, or undefined as soon as it passes `maxBodyBytes`. */
async function readText(response: Response, maxBodyBytes: number): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    size += value.byteLength;
    if (size > maxBodyBytes) return undefined;
    text += decoder.decode(value, { stream: true });
  }
}

/** A code (ECONNREFUSED, UND_ERR_SOCKET) or an error name: fetch's own messages can quote the URL. */
function failureKind(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return code;
  return cause instanceof Error ? cause.name : 'unknown';
}

function sizeLabel(bytes: number): string {
  const mib = 1024 * 1024;
  return bytes % mib === 0 ? `${bytes / mib} MiB` : `${bytes} byte`;
}
