/**
 * A core app on a fresh test database, listening on a loopback port, with known tokens; and a small HTTP client
 * for it. Tests talk to it over real HTTP.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { buildCoreApp } from '../../src/core/http/app.ts';
import type { Database } from '../../src/core/db/database.ts';
import { createLogger } from '../../src/logging.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface TestCore {
  url: string;
  app: FastifyInstance;
  db: Database;
  database: TestDatabase;
  adminToken: string;
  serviceToken: string;
  secretKey: Buffer;
  /** Every log line the app wrote, for tests that look for leaked secrets. */
  logs: string[];
  http: HttpClient;
  close(): Promise<void>;
}

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface HttpClient {
  request<T = any>(method: string, path: string, options?: { token?: string | null; body?: unknown; rawBody?: string; contentType?: string }): Promise<HttpAnswer<T>>;
  admin<T = any>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
  service<T = any>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
}

export function httpClient(url: string, tokens: { admin: string; service: string }): HttpClient {
  const request: HttpClient['request'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    const response = await fetch(`${url}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: response.status, headers: response.headers, body: parsed as never, text };
  };
  return {
    request,
    admin: (method, path, body) => request(method, path, { token: tokens.admin, body }),
    service: (method, path, body) => request(method, path, { token: tokens.service, body }),
  };
}

export async function startTestCore(options: { database?: TestDatabase } = {}): Promise<TestCore> {
  const database = options.database ?? (await createTestDatabase());
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const adminToken = `fwa_test_${randomBytes(24).toString('base64url')}`;
  const serviceToken = `fws_test_${randomBytes(24).toString('base64url')}`;
  const secretKey = randomBytes(32);
  const app = await buildCoreApp({
    db: database.db,
    logger: createLogger({ level: 'debug', name: 'fleetwire-test', destination }),
    adminToken,
    serviceToken,
    secretKey,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    app,
    db: database.db,
    database,
    adminToken,
    serviceToken,
    secretKey,
    logs,
    http: httpClient(url, { admin: adminToken, service: serviceToken }),
    close: async () => {
      await app.close();
      if (!options.database) await database.drop();
    },
  };
}
