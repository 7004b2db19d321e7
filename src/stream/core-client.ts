/**
 * The stream runtime's only way to core: its internal HTTP API with the service token, over keep-alive
 * connections. The stream runtime holds no database connection (DESIGN §1).
 */
import { Agent, request } from 'undici';
import { streamHolderHeader, type StreamConnectionGrant, type StreamDirectoryEntry, type StreamStatus } from '../canonical/stream-api.ts';
import type { CanonicalUpdate } from '../canonical/update.ts';

export type { StreamConnectionGrant, StreamDirectoryEntry, StreamStatus };

/**
 * What an answer that was not a success means for the caller:
 * - `retry`: core is overloaded or failing (429, 408, 5xx); the same request may succeed later;
 * - `refused`: core judged the request itself wrong (another 4xx); sending it again gets the same answer;
 * - `unauthorized`: core refused the service token (401, 403): a configuration error no retry fixes.
 */
export type CoreAnswerKind = 'retry' | 'refused' | 'unauthorized';

export class CoreAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly kind: CoreAnswerKind,
    readonly code: string,
    readonly retryAfterMs: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'CoreAnswerError';
  }

  get retryable(): boolean {
    return this.kind === 'retry';
  }
}

export function answerKind(status: number): CoreAnswerKind {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status >= 500 || status === 429 || status === 408) return 'retry';
  return 'refused';
}

/** Core could not be reached at all (refused, reset, timed out). Always retryable. */
export class CoreUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoreUnreachableError';
  }
}

export interface DirectoryPage {
  items: StreamDirectoryEntry[];
  nextCursor: string | null;
  total: number;
  holders: string[];
  leaseTtlSeconds: number;
}

export interface LeaseAnswer {
  granted: StreamConnectionGrant[];
  unreadable: string[];
  /** Deleted connections among those asked about (absent from a core that predates it). */
  gone?: string[];
  ttlSeconds: number;
}

export interface CoreClient {
  /** One page of the connections `holder` may hold (its own and the free ones). */
  listStreamConnections(holder: string, after?: string): Promise<DirectoryPage>;
  leases(holder: string, wanted: readonly string[], release: readonly string[], leaving?: boolean): Promise<LeaseAnswer>;
  /** Sends a batch in `holder`'s name: core refuses updates of connections it holds no live lease on. */
  ingest(updates: readonly CanonicalUpdate[], holder?: string): Promise<{ results: { status: string; readings: { status: string }[] }[] }>;
  reportStatus(holder: string, connections: readonly StreamStatus[]): Promise<void>;
  close(): Promise<void>;
}

function retryAfter(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header[0] : header;
  if (!text) return undefined;
  const seconds = Number(text);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
}

export function createCoreClient(options: { coreUrl: string; serviceToken: string; timeoutMs?: number }): CoreClient {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 8, connect: { timeout: 5000 } });
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    let response;
    try {
      response = await request(`${options.coreUrl}${path}`, {
        method,
        dispatcher,
        headers: {
          authorization: `Bearer ${options.serviceToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...extraHeaders,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw new CoreUnreachableError(`core is unreachable at ${options.coreUrl}: ${(error as Error).message}`);
    }
    const text = await response.body.text().catch(() => '');
    if (response.statusCode >= 200 && response.statusCode < 300) return (text ? JSON.parse(text) : {}) as T;
    let code = '';
    try {
      code = (JSON.parse(text) as { code?: string }).code ?? '';
    } catch {
      code = '';
    }
    const status = response.statusCode;
    const path0 = path.split('?')[0];
    throw new CoreAnswerError(status, answerKind(status), code, retryAfter(response.headers['retry-after']), `core answered ${status} ${code} to ${method} ${path0}`);
  }

  return {
    listStreamConnections: (holder, after) =>
      call('GET', `/internal/v1/stream-connections?${new URLSearchParams({ holder, ...(after === undefined ? {} : { after }) }).toString()}`),
    leases: (holder, wanted, release, leaving = false) => call('POST', '/internal/v1/stream-leases', { holder, wanted, release, leaving }),
    ingest: (updates, holder) => call('POST', '/internal/v1/ingest', { updates }, holder === undefined ? {} : { [streamHolderHeader]: holder }),
    reportStatus: async (holder, connections) => {
      await call('POST', '/internal/v1/stream-status', { holder, connections });
    },
    close: () => dispatcher.close(),
  };
}
