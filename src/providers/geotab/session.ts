/**
 * The MyGeotab session kept between poll runs in the PollContext `session` Map: the credentials Authenticate
 * returned and the server that serves the database. MyGeotab allows 10 Authenticate calls per user per minute,
 * so a connection authenticates once and reuses the session until the server refuses it.
 *
 * The session id is a bearer secret: it lives in a private field, and JSON or util.inspect of the Map (a log
 * line, a debug dump) shows it redacted. It is never persisted: the Map lives in process memory only.
 */
import { inspect } from 'node:util';
import type { SessionCredentials } from './wire.ts';

const sessionKey = 'geotab.session';

export class GeotabSession {
  readonly #credentials: SessionCredentials;

  constructor(
    /** Which login and base URL this session belongs to; a changed connection must not reuse it. */
    readonly loginKey: string,
    credentials: SessionCredentials,
    /** Base URL of the server for every call after Authenticate. */
    readonly server: string,
  ) {
    this.#credentials = { ...credentials };
  }

  get credentials(): SessionCredentials {
    return { ...this.#credentials };
  }

  toJSON(): Record<string, string> {
    return { server: this.server, userName: this.#credentials.userName, sessionId: '[redacted]' };
  }

  [inspect.custom](): string {
    return `GeotabSession(${this.server}, ${this.#credentials.userName}, sessionId [redacted])`;
  }
}

export function loginKeyOf(baseUrl: string, database: string, userName: string): string {
  return JSON.stringify([baseUrl, database, userName]);
}

export function cachedSession(memory: Map<string, unknown>, loginKey: string): GeotabSession | undefined {
  const held = memory.get(sessionKey);
  return held instanceof GeotabSession && held.loginKey === loginKey ? held : undefined;
}

export function keepSession(memory: Map<string, unknown>, session: GeotabSession): void {
  memory.set(sessionKey, session);
}

export function forgetSession(memory: Map<string, unknown>): void {
  memory.delete(sessionKey);
}
