/** Calls to the public API with the token this tab signed in with; a problem answer becomes an error with its detail. */
import type { Vehicle } from './api-types.ts';

export class Unauthorized extends Error {}

/** An answer with a problem (RFC 9457): its status, stable code and detail. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    /** The whole problem, for the members some problems add (an import's per-row `errors`). */
    readonly problem: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Api {
  get<T>(path: string): Promise<T>;
  /** No `body` sends none (a DELETE); a 204 answers undefined. */
  send<T>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** A POST of a text body of its own type (a CSV table). */
  sendText<T>(path: string, contentType: string, body: string): Promise<T>;
}

export function createApi(token: () => string | null): Api {
  async function call<T>(path: string, init: RequestInit): Promise<T> {
    // An answer that takes this long is not coming: the load fails and is tried again rather than hanging the view.
    const response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${token()}` }, signal: AbortSignal.timeout(30_000) });
    if (response.status === 401) throw new Unauthorized('the key or token was not accepted');
    if (!response.ok) {
      const problem = (await response.json().catch(() => ({}))) as { detail?: string; code?: string };
      throw new ApiProblem(response.status, problem.code, problem.detail ?? `${response.status} ${response.statusText}`, problem);
    }
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }
  return {
    get: (path) => call(path, {}),
    // A content type with no body is refused as empty JSON: a body-less call says none.
    send: (method, path, body) => call(path, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    sendText: (path, contentType, body) => call(path, { method: 'POST', headers: { 'content-type': contentType }, body }),
  };
}

/** The workspace a key belongs to (its id is part of the key), or null for the admin token. */
export function workspaceOfKey(token: string): string | null {
  const match = /^fwk_([0-9a-f]{32})[0-9a-f]{32}_/.exec(token);
  if (!match) return null;
  const h = match[1]!;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function loadVehicles(api: Api, ws: string): Promise<Vehicle[]> {
  const all: Vehicle[] = [];
  let cursor: string | null = null;
  // A depot's fleet fits in a few pages; stop at 5,000 vehicles, which no table reads well anyway.
  for (let page = 0; page < 5; page += 1) {
    const answer: { items: Vehicle[]; nextCursor: string | null } = await api.get(`/v1/workspaces/${ws}/vehicles?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    all.push(...answer.items);
    cursor = answer.nextCursor;
    if (!cursor) break;
  }
  return all;
}
