/**
 * A Database that records the statements run through it, with their parameters, while a piece of work runs under
 * `record(label, work)`. Attribution follows the async context (AsyncLocalStorage), not the clock: what the event hub,
 * the webhook dispatcher or the job queue run on their own timers meanwhile is not recorded, and a request reaches
 * its handler in the caller's context when it goes through `app.inject` (no socket).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database, Sql } from '../../src/core/db/database.ts';

export interface RecordedStatement {
  /** What was running: the label given to `record`. */
  label: string;
  text: string;
  params: readonly unknown[];
  /** A script run with `exec` (several statements, no parameters). */
  script: boolean;
}

export interface RecordingDatabase extends Database {
  readonly statements: RecordedStatement[];
  record<T>(label: string, work: () => PromiseLike<T>): Promise<T>;
}

export function recordingDatabase(inner: Database): RecordingDatabase {
  const context = new AsyncLocalStorage<string>();
  const statements: RecordedStatement[] = [];
  const note = (text: string, params: readonly unknown[] | undefined, script: boolean) => {
    const label = context.getStore();
    if (label !== undefined) statements.push({ label, text, params: params ?? [], script });
  };
  const wrap = (sql: Sql): Sql => ({
    query: (text, params) => {
      note(text, params, false);
      return sql.query(text, params);
    },
    exec: (script) => {
      note(script, undefined, true);
      return sql.exec(script);
    },
  });
  return {
    ...wrap(inner),
    kind: inner.kind,
    statements,
    transaction: (work) => inner.transaction((tx) => work(wrap(tx))),
    withSession: (work) => inner.withSession((session) => work(wrap(session))),
    close: () => inner.close(),
    // `await` inside the context: a lazy thenable (what `app.inject` answers) starts its work when awaited.
    record: (label, work) => context.run(label, async () => await work()),
  };
}
