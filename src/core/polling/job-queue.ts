/**
 * Workspace poll jobs in a PostgreSQL-backed queue (pg-boss) that every core process shares (DESIGN §5).
 * The queue's `stately` policy keeps at most one queued and one running job per workspace (the singleton key),
 * so no two processes poll a workspace at once. A job whose holder dies expires after `expireInSeconds`; the
 * queue's maintenance then retries it and another process takes it: within expiry + maintenance interval +
 * polling interval (30 + 10 + 2 s by default, under a minute).
 *
 * pg-boss runs on PGlite as on PostgreSQL, through the same `Sql` interface as everything else.
 */
import PgBoss from 'pg-boss';
import { sqlErrorIs, type Database, type Sql } from '../db/database.ts';

const workspacePollQueue = 'workspace-poll';

export interface WorkspacePollJob {
  workspaceId: string;
  eventId: string;
}

export interface PollJobQueueOptions {
  /** The schema pg-boss keeps its tables in. */
  schema: string;
  /** A running job older than this is taken to be dead and retried elsewhere. */
  expireInSeconds: number;
  maintenanceIntervalSeconds: number;
  pollingIntervalSeconds: number;
  /** Jobs (workspaces) one process runs at the same time. */
  concurrency: number;
  onError: (error: Error) => void;
}

export interface PollJobQueue {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Enqueues a poll of each workspace inside the caller's transaction; one already queued is not doubled. */
  enqueue(tx: Sql, jobs: readonly WorkspacePollJob[]): Promise<void>;
  /** Runs `handler` for jobs as they come; at most `concurrency` at once in this process. */
  work(handler: (job: WorkspacePollJob) => Promise<void>): Promise<void>;
}

/** pg-boss's one-method database interface over ours; scripts without parameters may hold several statements. */
function bossDb(sql: Sql): PgBoss.Db {
  return {
    async executeSql(text: string, values: unknown[]) {
      if (values && values.length > 0) return { rows: (await sql.query(text, values)).rows };
      return { rows: await sql.exec(text) };
    },
  };
}

/**
 * Creates the queue's schema before pg-boss installs into it. pg-boss serializes its install with an advisory
 * lock, but PostgreSQL does not refresh its catalog cache on an advisory lock, so a process that waited for another's
 * install can still try to create the schema and fail; with the schema made here (a race answered by a unique
 * violation, which means it exists) pg-boss's own install races resolve as it expects.
 */
async function createSchemaOnce(db: Database, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`job queue schema ${JSON.stringify(schema)} is not a plain identifier`);
  try {
    await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (error) {
    if (!sqlErrorIs(error, 'unique_violation')) throw error;
  }
}

export function createPollJobQueue(db: Database, options: PollJobQueueOptions): PollJobQueue {
  const boss = new PgBoss({
    db: bossDb(db),
    schema: options.schema,
    supervise: true,
    maintenanceIntervalSeconds: options.maintenanceIntervalSeconds,
    monitorStateIntervalSeconds: 60,
    schedule: false,
    // Completed and failed jobs are kept a day, for inspection, then deleted.
    deleteAfterDays: 1,
    archiveCompletedAfterSeconds: 3600,
  });
  boss.on('error', (error) => options.onError(error));

  let started: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  let stopping = false;
  const loops: Promise<void>[] = [];
  const sleepers = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });

  /**
   * One worker: fetch a job, run it, and fetch again at once while there is work; wait the polling interval only
   * when the queue is empty. (pg-boss's own worker waits the interval after every job, which would cap a process
   * at one workspace per interval per worker.)
   */
  async function workLoop(handler: (job: WorkspacePollJob) => Promise<void>): Promise<void> {
    while (!stopping) {
      let job: PgBoss.Job<WorkspacePollJob> | undefined;
      try {
        const jobs = await boss.fetch<WorkspacePollJob>(workspacePollQueue, { batchSize: 1 });
        job = jobs?.[0];
      } catch (error) {
        options.onError(error as Error);
      }
      if (!job) {
        await pause(options.pollingIntervalSeconds * 1000);
        continue;
      }
      try {
        await handler(job.data);
        await boss.complete(workspacePollQueue, job.id);
      } catch (error) {
        await boss.fail(workspacePollQueue, job.id, { message: (error as Error).message }).catch((e: Error) => options.onError(e));
      }
    }
  }

  return {
    start: () =>
      (started ??= (async () => {
        await createSchemaOnce(db, options.schema);
        await boss.start();
        // Processes starting together can deadlock inside pg-boss's queue creation (it attaches a partition while
        // another process waits on the queue row); the loser is rolled back and finds the queue on its next try.
        for (let attempt = 1; ; attempt += 1) {
          try {
            if (await boss.getQueue(workspacePollQueue)) break;
            await boss.createQueue(workspacePollQueue, {
              name: workspacePollQueue,
              policy: 'stately',
              expireInSeconds: options.expireInSeconds,
              // A job whose holder died is retried at once, by whichever process fetches it first.
              retryLimit: 2,
              retryDelay: 0,
            });
            break;
          } catch (error) {
            const race = sqlErrorIs(error, 'deadlock_detected') || sqlErrorIs(error, 'unique_violation');
            if (!race || attempt >= 5) throw error;
            await pause(100 + Math.random() * 400);
          }
        }
      })()),
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        for (const wake of sleepers) wake();
        // Running polls finish (they are bounded by the run deadline); then the queue stops.
        await Promise.all(loops);
        if (!started) return;
        await started.catch(() => undefined);
        await boss.stop({ graceful: true, wait: true, close: false, timeout: options.expireInSeconds * 1000 });
      })()),
    async enqueue(tx, jobs) {
      for (const job of jobs) {
        await boss.send(workspacePollQueue, { ...job }, { singletonKey: job.workspaceId, db: bossDb(tx) });
      }
    },
    async work(handler) {
      // Independent workers, one job each: a slow workspace never holds up the next one.
      for (let i = 0; i < options.concurrency; i += 1) loops.push(workLoop(handler));
    },
  };
}
