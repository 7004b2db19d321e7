/**
 * The closed set of provider failures (DESIGN §5). Retry decisions use the class, never the message:
 * - `auth`: credentials refused; stop this connection and surface it in health;
 * - `rate_limited`: wait `retryAfterMs` (from Retry-After) before the next call;
 * - `transient`: timeouts, 5xx, network; back off with jitter and try again;
 * - `permanent`: a bad request or configuration; retrying will not help;
 * - `malformed_response`: the provider answered something we cannot read.
 * Messages never carry credentials.
 */
export const providerErrorClasses = ['auth', 'rate_limited', 'transient', 'permanent', 'malformed_response'] as const;
export type ProviderErrorClass = (typeof providerErrorClasses)[number];

export class ProviderError extends Error {
  constructor(
    readonly errorClass: ProviderErrorClass,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export function isProviderError(error: unknown): error is ProviderError {
  return error instanceof ProviderError;
}

/** Seconds (possibly fractional, as Samsara sends) or an HTTP date, to milliseconds; undefined if unreadable. */
export function parseRetryAfter(header: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const date = Date.parse(header);
  if (Number.isFinite(date)) return Math.max(0, date - nowMs);
  return undefined;
}

/** The class of an HTTP status answered by a provider. */
export function classifyHttpStatus(status: number): ProviderErrorClass {
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate_limited';
  if (status === 408 || status >= 500) return 'transient';
  return 'permanent';
}
