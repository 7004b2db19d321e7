/**
 * Errors that domain code raises on purpose. Each carries a stable `code` (documented in docs/API.md) and a kind
 * that the HTTP layer turns into a status; domain code knows nothing of HTTP.
 */
export type DomainErrorKind = 'invalid' | 'not_found' | 'conflict' | 'unavailable';

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    readonly code: string,
    message: string,
    /** Each reason a request was refused for, when there are several (a problem's `reasons`). */
    readonly reasons?: readonly string[],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string, id: string) =>
  new DomainError('not_found', `${what}_not_found`, `${what.replace(/_/g, ' ')} ${id} does not exist`);
