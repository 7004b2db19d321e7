/**
 * The one database interface core's SQL runs behind (DESIGN §2): PostgreSQL through `pg`, or PGlite (PostgreSQL
 * compiled to WASM) embedded in the process. One dialect, one set of queries; nothing above this file knows
 * which one it talks to. Repository functions take a `Sql` (the database or an open transaction) as their first
 * argument, and the caller owns the transaction.
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Sql {
  /** One statement with bound parameters. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** A script of several statements and no parameters (migrations); answers the last statement's rows. */
  exec(script: string): Promise<Record<string, unknown>[]>;
}

export interface Database extends Sql {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T>;
  /**
   * Runs `work` on one database session outside any transaction: for session-level advisory locks and statements
   * that must not run in a transaction (DETACH PARTITION CONCURRENTLY).
   */
  withSession<T>(work: (session: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const INT8 = 20;
const toNumber = (text: string): number => Number(text);

export interface PostgresOptions {
  url: string;
  poolSize?: number;
  /** A schema to put first on the search path (tests run each file in a schema of its own). */
  searchPath?: string;
  applicationName?: string;
}

export function openPostgres(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    application_name: options.applicationName ?? 'fleetwire',
    // Fleetwire's statements are short: JIT compilation, which the planner starts on cost estimates alone, cost the
    // fleet's health query more (70-80 ms) than the whole query takes without it (docs/PERFORMANCE.md, "Reads"), so
    // sessions start with it off. Options in the URL (`?options=...`) replace these.
    options: ['-c jit=off', ...(options.searchPath ? [`-c search_path=${options.searchPath}`] : [])].join(' '),
    idleTimeoutMillis: 30_000,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8 ? toNumber : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its server (a restart) must not take the process down; the pool replaces it.
  pool.on('error', () => undefined);

  const run = async <R>(client: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]) => {
    const result = await client.query(text, params as unknown[] | undefined);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  };
  const script = async (client: pg.Pool | pg.PoolClient, text: string) => {
    const result = (await client.query(text)) as pg.QueryResult | pg.QueryResult[];
    const last = Array.isArray(result) ? result[result.length - 1] : result;
    return (last?.rows ?? []) as Record<string, unknown>[];
  };
  const clientSql = (client: pg.PoolClient): Sql => ({
    query: (text, params) => run(client, text, params),
    exec: (text) => script(client, text),
  });

  return {
    kind: 'postgres',
    query: (text, params) => run(pool, text, params),
    exec: (text) => script(pool, text),
    async transaction(work) {
      const { client, problem, release } = await checkOut(pool);
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work(clientSql(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw error;
      } finally {
        release(broken ?? problem());
      }
    },
    async withSession(work) {
      const { client, problem, release } = await checkOut(pool);
      let broken: Error | undefined;
      try {
        return await work(clientSql(client));
      } catch (error) {
        // A session that failed mid-way may hold locks or state; it does not go back to the pool.
        broken = error as Error;
        throw error;
      } finally {
        release(broken ?? problem());
      }
    },
    close: () => pool.end(),
  };
}

/**
 * A client taken from the pool for a transaction or session. The pool listens for a connection's 'error' event
 * only while the client is idle; a server restart or a killed backend while it is checked out would otherwise be
 * an unhandled 'error' that ends the process. The error is kept instead: the query in flight fails on its own,
 * and the client is destroyed rather than returned to the pool.
 */
async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; problem: () => Error | undefined; release: (broken?: Error) => void }> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost ??= error;
  };
  client.on('error', onError);
  return {
    client,
    problem: () => lost,
    release: (broken) => {
      client.off('error', onError);
      client.release(broken);
    },
  };
}

export interface PgliteOptions {
  /** A directory for the database files; omitted means in memory. */
  dataDir?: string;
}

export async function openPglite(options: PgliteOptions = {}): Promise<Database> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir, { parsers: { [INT8]: toNumber } });

  const wrap = (target: Pick<PGlite, 'query' | 'exec'>): Sql => ({
    async query<R>(text: string, params?: readonly unknown[]) {
      const result = await target.query<R>(text, params as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
    },
    async exec(script) {
      const results = await target.exec(script);
      return (results[results.length - 1]?.rows ?? []) as Record<string, unknown>[];
    },
  });

  return {
    kind: 'pglite',
    ...wrap(db),
    transaction: (work) => db.transaction((tx) => work(wrap(tx))),
    // PGlite is one session: the whole process shares it.
    withSession: (work) => work(wrap(db)),
    close: () => db.close(),
  };
}

export type DatabaseSettings =
  | { kind: 'pglite'; dataDir?: string }
  | { kind: 'postgres'; url: string; poolSize?: number; searchPath?: string };

export async function openDatabase(settings: DatabaseSettings): Promise<Database> {
  return settings.kind === 'pglite' ? openPglite({ dataDir: settings.dataDir }) : openPostgres(settings);
}

const sqlStates = {
  unique_violation: '23505',
  foreign_key_violation: '23503',
  check_violation: '23514',
  serialization_failure: '40001',
  deadlock_detected: '40P01',
} as const;

export function sqlErrorIs(error: unknown, name: keyof typeof sqlStates): boolean {
  return sqlState(error) === sqlStates[name];
}

/**
 * Runs `transaction` again when the database chose it as a deadlock's or a serialization failure's victim (at
 * most `attempts` times in all); each attempt starts clean, the previous one having rolled back.
 */
export async function retryTransaction<T>(transaction: () => Promise<T>, attempts = 3): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    try {
      return await transaction();
    } catch (error) {
      const retryable = sqlErrorIs(error, 'deadlock_detected') || sqlErrorIs(error, 'serialization_failure');
      if (!retryable || tries >= attempts) throw error;
    }
  }
}

/**
 * True for an error that means the database cannot be reached or is going away (refused or reset connections,
 * SQLSTATE class 08, an administrator's shutdown, a server starting up): the request may succeed later.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) return state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03';
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH'].includes(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(message);
}

/** The SQLSTATE of a database error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
