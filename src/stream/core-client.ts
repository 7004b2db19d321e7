/**
 * The stream runtime's only way to core: its internal HTTP API with the service token, over keep-alive
 * connections. The stream runtime holds no database connection (DESIGN §1).
 */
import { Agent, request } from 'undici';
import type { StreamConnectionGrant, StreamStatus } from '../canonical/stream-api.ts';
import type { CanonicalUpdate } from '../canonical/update.ts';

export type { StreamConnectionGrant, StreamStatus };

/** Core answered, but not with success: `retryable` says whether the same request may succeed later. */
export class CoreAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly retryable: boolean,
    readonly retryAfterMs: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'CoreAnswerError';
  }
}

/** Core could not be reached at all (refused, reset, timed out). Always retryable. */
export class CoreUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoreUnreachableError';
  }
}

export interface CoreClient {
  listStreamConnections(): Promise<{ items: StreamConnectionGrant[]; holders: string[]; leaseTtlSeconds: number }>;
  leases(holder: string, wanted: readonly string[], release: readonly string[], leaving?: boolean): Promise<{ granted: string[]; ttlSeconds: number }>;
  ingest(updates: readonly CanonicalUpdate[]): Promise<{ results: { status: string; readings: { status: string }[] }[] }>;
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

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let response;
    try {
      response = await request(`${options.coreUrl}${path}`, {
        method,
        dispatcher,
        headers: {
          authorization: `Bearer ${options.serviceToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
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
    // 401/403 are a configuration problem (a wrong service token) that an operator can fix: keep trying.
    const retryable = status >= 500 || status === 429 || status === 401 || status === 403 || status === 408;
    throw new CoreAnswerError(status, retryable, retryAfter(response.headers['retry-after']), `core answered ${status} ${code} to ${method} ${path}`);
  }

  return {
    listStreamConnections: () => call('GET', '/internal/v1/stream-connections'),
    leases: (holder, wanted, release, leaving = false) => call('POST', '/internal/v1/stream-leases', { holder, wanted, release, leaving }),
    ingest: (updates) => call('POST', '/internal/v1/ingest', { updates }),
    reportStatus: async (holder, connections) => {
      await call('POST', '/internal/v1/stream-status', { holder, connections });
    },
    close: () => dispatcher.close(),
  };
}
