/**
 * The Geotab simulator's sessions and its Authenticate limit (MyGeotab: at most 10 Authenticate calls per user
 * per minute). Time comes from the simulator's clock, so tests expire sessions and windows without sleeping.
 */
import { randomBytes } from 'node:crypto';
import { sessionCredentialsSchema, type SessionCredentials } from '../../providers/geotab/wire.ts';

export class SimulatedSessions {
  private readonly open = new Map<string, { database: string; userName: string; expiresAtMs: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  start(database: string, userName: string): SessionCredentials {
    // MyGeotab session ids are long decimal strings.
    const sessionId = BigInt(`0x${randomBytes(8).toString('hex')}`).toString();
    this.open.set(sessionId, { database, userName, expiresAtMs: this.now() + this.ttlMs });
    return { database, sessionId, userName };
  }

  /** The session's user, or undefined if the credentials name no live session. */
  check(credentials: unknown): { database: string; userName: string } | undefined {
    const parsed = sessionCredentialsSchema.safeParse(credentials);
    if (!parsed.success) return undefined;
    const session = this.open.get(parsed.data.sessionId);
    if (!session || session.database !== parsed.data.database || session.userName !== parsed.data.userName) return undefined;
    if (this.now() >= session.expiresAtMs) {
      this.open.delete(parsed.data.sessionId);
      return undefined;
    }
    return session;
  }

  expireAll(): void {
    this.open.clear();
  }
}

/** A sliding one-minute window of Authenticate calls per user. */
export class AuthenticateLimit {
  private readonly calls = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Counts a call; returns undefined if allowed, else the seconds until the window has room again. */
  take(user: string): number | undefined {
    const now = this.now();
    const recent = (this.calls.get(user) ?? []).filter((at) => at > now - 60_000);
    this.calls.set(user, recent);
    if (recent.length >= this.perMinute) return Math.max(1, Math.ceil((recent[0]! + 60_000 - now) / 1000));
    recent.push(now);
    return undefined;
  }
}
