/**
 * PostgreSQL restarted under Fleetwire, on a private cluster (the shared server other test files use is never
 * touched):
 * (a) ingest over HTTP from four concurrent senders through four fast and two immediate (crash) restarts: each
 *     batch is answered 200 and stored whole, or fails whole and is retried until accepted; at the end history holds
 *     each reading once with its value, and each snapshot row is the newest history row;
 * (b) a `fleetwire core` process keeps serving when the server restarts under an open transaction (a client
 *     checked out of the pool must not raise an unhandled 'error' that ends the process);
 * (c) a Samsara poll whose page commit is cut by a restart, and one whose next page arrives while the server is
 *     down: the cursor stays where the last committed page put it, the next poll re-reads from there, and the store
 *     equals what the simulator served.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type Database } from '../../src/core/db/database.ts';
import { migrate } from '../../src/core/db/migrate.ts';
import { createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import { createSamsaraPollAdapter } from '../../src/providers/samsara/adapter.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import { servedKey } from '../../src/sim/ground-truth.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { backend, type TestDatabase } from '../support/database.ts';
import { createFleet, update, type TestFleet } from '../support/fleet.ts';
import { batchObservedAt, numberedBatch, readingsPerUpdate, storedBatches, wrongStoredValues } from '../support/numbered-batches.ts';
import { observePollAdapter, type ObservedPollAdapter } from '../support/observed-poll-adapter.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.ts';
import { freePort, startFleetwire, type Running } from '../support/processes.ts';
import { connectSimulator, expectStoreMatchesGroundTruth, type SimulatedConnection } from '../support/simulated.ts';
import { storedReadings } from '../support/stored-readings.ts';
import { checkStoreInvariants, invariantViolations } from '../support/store-invariants.ts';
import { until } from '../support/stream.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(backend === 'postgres')('PostgreSQL restarted under load (a private cluster)', () => {
  let server: PrivatePostgres | undefined;
  let db: Database | undefined;
  let core: TestCore | undefined;
  let samsara: RunningSimulator | undefined;
  let observed: ObservedPollAdapter;
  let clock = Date.now() - 40 * 60_000;
  const fleet = new FleetModel({ seed: 811, vehicles: 6, startMs: clock, timeScale: 5 });

  beforeAll(async () => {
    server = await startPrivatePostgres();
    db = openPostgres({ url: server.url, poolSize: 8 });
    await migrate(db);
    const database: TestDatabase = {
      db,
      jobSchema: 'fleetwire_jobs',
      reopen: async () => openPostgres({ url: server!.url }),
      drop: async () => undefined,
    };
    samsara = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'restart-token' }, fleet }], now: () => clock, pageSize: 20 });
    observed = observePollAdapter(createSamsaraPollAdapter({ timeoutMs: 3000 }) as unknown as PollAdapter);
    core = await startTestCore({ database, polling: { adapters: new Map([['samsara', observed.adapter]]) } });
  }, 60_000);

  // Everything this file started goes, whatever failed; the cluster last (its exit hook is the final safety net).
  afterAll(async () => {
    await core?.close().catch(() => undefined);
    await samsara?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await server?.destroy();
  }, 60_000);

  /** Retries a read until the server answers (it may be restarting). */
  async function read<T>(what: string, query: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await query();
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}\n${server!.log().slice(-2000)}`);
        await sleep(100);
      }
    }
  }

  describe('ingest over HTTP', () => {
    const base = Date.now() - 60 * 60_000;

    it('stores every batch whole or not at all across fast and crash restarts, and every retried batch once', async () => {
      const testFleet = await createFleet(core!.db, core!.secretKey, { vehicles: 40, provider: 'traccar', name: 'Restart depot' });
      const perBatch = testFleet.vehicles.length * readingsPerUpdate;
      const batch = (n: number) => numberedBatch(testFleet, base, n);
      const problems: string[] = [];
      const failedAttempts: { n: number; attempt: number; answer: string; storedAfter: number }[] = [];
      const accepted = new Set<number>();
      let next = 1;
      let sending = true;

      const storedOf = (n: number) =>
        read(`stored readings of batch ${n}`, async () => {
          const { rows } = await db!.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM signal_history WHERE workspace_id = $1 AND observed_at = $2',
            [testFleet.workspaceId, new Date(batchObservedAt(base, n)).toISOString()],
          );
          return rows[0]!.n;
        });

      async function deliver(n: number): Promise<void> {
        const body = { updates: batch(n) };
        let storedByFailure = false;
        for (let attempt = 1; attempt <= 50; attempt += 1) {
          let answer: string;
          try {
            const reply = await core!.http.service('POST', '/internal/v1/ingest', body);
            if (reply.status === 200) {
              const statuses = (reply.body.results as { readings: { status: string }[] }[]).flatMap((r) => r.readings.map((x) => x.status));
              // A first answer stores everything (accepted or late); after a failure that had committed (an
              // acknowledgement lost with the connection) everything is a duplicate.
              const allowed = storedByFailure ? ['duplicate'] : ['accepted', 'late'];
              const wrong = statuses.filter((s) => !allowed.includes(s));
              if (statuses.length !== perBatch || wrong.length > 0) problems.push(`batch ${n} attempt ${attempt}: 200 with ${statuses.length} results, unexpected ${JSON.stringify(wrong.slice(0, 3))}`);
              accepted.add(n);
              return;
            }
            answer = `HTTP ${reply.status} ${reply.body?.code ?? ''}`;
          } catch (error) {
            answer = (error as Error).message;
          }
          // Failed as a whole: nothing of the batch is stored, or (the commit went through) all of it.
          const stored = await storedOf(n);
          failedAttempts.push({ n, attempt, answer, storedAfter: stored });
          if (stored !== 0 && stored !== perBatch) problems.push(`batch ${n} failed (${answer}) with ${stored} of ${perBatch} readings stored`);
          storedByFailure = stored === perBatch;
          await sleep(50 + Math.random() * 100);
        }
        problems.push(`batch ${n} was never accepted`);
      }

      const senders = Array.from({ length: 4 }, async () => {
        while (sending) await deliver(next++);
      });
      const restarts = (async () => {
        try {
          for (const mode of ['fast', 'fast', 'immediate', 'fast', 'immediate', 'fast'] as const) {
            const before = accepted.size;
            await until('batches accepted before the restart', () => accepted.size >= before + 10, 30_000);
            await sleep(Math.random() * 200);
            await server!.restart(mode);
          }
          const before = accepted.size;
          await until('batches accepted after the last restart', () => accepted.size >= before + 15, 30_000);
        } finally {
          sending = false;
        }
      })();
      await Promise.all([restarts, ...senders]);

      expect(problems).toEqual([]);
      const sent = next - 1;
      expect(accepted.size).toBe(sent);
      // The restarts cut batches in flight (otherwise this proved nothing).
      expect(failedAttempts.length, 'no batch was interrupted by a restart').toBeGreaterThan(0);

      // Each reading once, with its value.
      const stored = await storedBatches(db!, testFleet.workspaceId, base);
      expect(stored.size).toBe(sent);
      expect([...stored].filter(([n, count]) => n < 1 || n > sent || count !== perBatch)).toEqual([]);
      expect(await wrongStoredValues(db!, testFleet, base, sent)).toEqual([]);
      expect(invariantViolations(await checkStoreInvariants(db!, testFleet.workspaceId))).toEqual([]);
      const { rows: rejected } = await db!.query<{ n: number }>('SELECT count(*)::int AS n FROM ingest_rejections WHERE workspace_id = $1', [testFleet.workspaceId]);
      expect(rejected[0]!.n).toBe(0);
    }, 120_000);
  });

  describe('a fleetwire core process', () => {
    let coreProcess: Running | undefined;
    let url = '';
    let serviceToken = '';
    let deviceId = '';
    let dataDir = '';
    beforeAll(() => {
      dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-restart-core-'));
    });
    afterAll(async () => {
      await coreProcess?.stop('SIGKILL');
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    const ingest = (externalDeviceId: string, testFleet: TestFleet) =>
      fetch(`${url}/internal/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ updates: [update(testFleet, [{ signal: 'soc_pct', value: 50, observedAt: Date.now() - 1000 }], { externalDeviceId })] }),
      }).then((r) => r.status, (e: Error) => e.message);
    let testFleet: TestFleet;

    it('restarts the server while a core process holds an ingest transaction open', async () => {
      testFleet = await createFleet(db!, core!.secretKey, { vehicles: 1, provider: 'traccar', name: 'Crash depot' });
      deviceId = testFleet.vehicles[0]!.externalId;
      // An unknown device's rejection stalls inside its transaction until the restart ends the session.
      await db!.exec(`
        CREATE FUNCTION stall_rejection() RETURNS trigger AS $$
        BEGIN
          IF NEW.external_device_id = 'stall-device' THEN PERFORM pg_sleep(60); END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER stall_rejection BEFORE INSERT ON ingest_rejections FOR EACH ROW EXECUTE FUNCTION stall_rejection();`);
      const port = await freePort();
      serviceToken = `fws_restart_${randomBytes(16).toString('hex')}`;
      coreProcess = startFleetwire(['core'], {
        DATABASE_URL: server!.url,
        FLEETWIRE_SCHEDULER: 'external',
        FLEETWIRE_PORT: String(port),
        FLEETWIRE_DATA_DIR: dataDir,
        FLEETWIRE_SERVICE_TOKEN: serviceToken,
        FLEETWIRE_ADMIN_TOKEN: `fwa_restart_${randomBytes(16).toString('hex')}`,
        // The key the test core encrypted this database's credentials with: a process with another refuses to start.
        FLEETWIRE_SECRET_KEY: core!.secretKey.toString('hex'),
        FLEETWIRE_LOG_LEVEL: 'warn',
      });
      url = `http://127.0.0.1:${port}`;
      await until('core to be ready', () => fetch(`${url}/readyz`).then((r) => r.ok, () => false), 30_000);
      expect(await ingest(deviceId, testFleet)).toBe(200);
      try {
        const stalled = ingest('stall-device', testFleet);
        await until('the ingest transaction to stall', async () => {
          const { rows } = await db!.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'`);
          return rows[0]!.n > 0;
        }, 20_000);
        await server!.restart('fast');
        await stalled;
      } finally {
        await read('removing the stall', () => db!.exec('DROP TRIGGER stall_rejection ON ingest_rejections; DROP FUNCTION stall_rejection();'));
      }
    }, 60_000);

    // The server ends the connection of a client checked out for a transaction: the unit of work fails, the process
    // stays up (it exited on an unhandled 'error' event before database.ts listened for it).
    it('keeps serving after that restart', async () => {
      await sleep(1000);
      expect(coreProcess!.child.exitCode, `core exited:\n${coreProcess!.output().slice(-3000)}`).toBeNull();
      expect(await ingest(deviceId, testFleet)).toBe(200);
    });
  });

  describe('a Samsara poll', () => {
    let workspaceId: string;
    let connection: SimulatedConnection;

    beforeAll(async () => {
      workspaceId = (await createWorkspace(core!.db, { name: 'Restart poll depot', policy: { ...defaultPolicy, pollIntervalSeconds: 30 } })).id;
      connection = await connectSimulator(core!.db, core!.secretKey, workspaceId, {
        provider: 'samsara',
        baseUrl: samsara!.url,
        credentials: { apiToken: 'restart-token' },
        externalIds: fleet.vehicles.map((v) => v.samsaraId),
      });
      await core!.runner.runWorkspace({ workspaceId, eventId: 'warm-up' });
      await expectStoreMatchesGroundTruth(core!.db, workspaceId, connection, samsara!.groundTruth, 'restart-token');
    });

    const storedCursor = () =>
      read('the stored cursor', async () => (await db!.query<{ feed_cursor: unknown }>('SELECT feed_cursor FROM provider_connections WHERE id = $1', [connection.connectionId])).rows[0]!.feed_cursor);
    const storedKeys = async () => new Set((await read('stored readings', () => storedReadings(db!, workspaceId, connection.connectionId))).map(servedKey));
    const pageKeys = (page: { devices: { externalDeviceId: string; readings: { signal: string; observedAt: string }[] }[] }) =>
      page.devices.flatMap((d) => d.readings.map((r) => servedKey({ externalDeviceId: d.externalDeviceId, signal: r.signal as never, observedAtMs: Date.parse(r.observedAt) })));

    /** The poll after the fault: from the committed cursor, re-reading the page that was lost, ending equal to ground truth. */
    async function recoverAndCompare(committed: unknown, lostPage: string[]): Promise<void> {
      await db!.query('UPDATE connection_poll_states SET next_poll_at = NULL WHERE connection_id = $1', [connection.connectionId]);
      const pollsBefore = observed.polls.length;
      await core!.runner.runWorkspace({ workspaceId, eventId: `recover-${pollsBefore}` });
      const recovery = observed.polls[pollsBefore]!;
      expect(recovery.startCursor).toEqual(committed);
      const reread = new Set(recovery.pages.flatMap(pageKeys));
      expect(lostPage.filter((key) => !reread.has(key)), 'the lost page was not read again').toEqual([]);
      const [run] = (await core!.http.admin('GET', `/v1/workspaces/${workspaceId}/poll-runs?limit=1`)).body.items;
      expect(run).toMatchObject({ status: 'succeeded', triggerEventId: `recover-${pollsBefore}` });
      await expectStoreMatchesGroundTruth(core!.db, workspaceId, connection, samsara!.groundTruth, 'restart-token');
      expect(invariantViolations(await checkStoreInvariants(db!, workspaceId))).toEqual([]);
    }

    it('loses the commit a restart cuts, keeps the cursor of the page before, and re-reads from it', async () => {
      clock += 5 * 60_000;
      // Page 2's ingest transaction stalls inside the database (at its vehicle sync marks, a write every ingest
      // makes, before the cursor's) until the restart ends its session.
      await db!.exec(`
        CREATE TABLE stall_ingest (workspace_id uuid PRIMARY KEY);
        CREATE FUNCTION stall_ingest() RETURNS trigger AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM stall_ingest WHERE workspace_id = NEW.workspace_id) THEN PERFORM pg_sleep(60); END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER stall_ingest BEFORE UPDATE ON vehicles FOR EACH ROW EXECUTE FUNCTION stall_ingest();`);
      let committed: unknown;
      let restarted: Promise<void> | undefined;
      observed.afterPage = async (_page, n) => {
        if (n !== 1) return;
        observed.afterPage = undefined;
        committed = await storedCursor();
        await db!.query('INSERT INTO stall_ingest VALUES ($1)', [workspaceId]);
        restarted = (async () => {
          await until('the page 2 transaction to stall', async () => {
            const { rows } = await db!.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'`);
            return rows[0]!.n > 0;
          }, 20_000);
          await server!.restart('fast');
          await read('removing the stall', () => db!.query('DELETE FROM stall_ingest'));
        })();
      };
      const pollsBefore = observed.polls.length;
      const historyBefore = await storedKeys();
      await core!.runner.runWorkspace({ workspaceId, eventId: 'cut-by-restart' });
      await restarted;
      const cut = observed.polls[pollsBefore]!;
      expect(cut.pages.length, 'the poll got to page 2').toBeGreaterThanOrEqual(2);
      expect(await storedCursor()).toEqual(committed);
      const lost = pageKeys(cut.pages[1]!).filter((key) => !historyBefore.has(key));
      expect(lost.length).toBeGreaterThan(0);
      const after = await storedKeys();
      expect(lost.filter((key) => after.has(key)), 'part of the cut page was stored').toEqual([]);
      // The run is recorded failed, unless the server was still down when the runner tried to record it.
      const { rows: runs } = await db!.query<{ status: string; error_class: string | null }>(
        `SELECT status, error_class FROM poll_runs WHERE workspace_id = $1 AND trigger_event_id = 'cut-by-restart'`,
        [workspaceId],
      );
      expect(runs).toHaveLength(1);
      expect([['failed', 'internal'], ['running', null]]).toContainEqual([runs[0]!.status, runs[0]!.error_class]);
      await db!.exec('DROP TRIGGER stall_ingest ON vehicles; DROP FUNCTION stall_ingest(); DROP TABLE stall_ingest;');

      await recoverAndCompare(committed, lost);
    }, 60_000);

    it('fails the pages that arrive while the server is down, and resumes from the last committed cursor once it is back', async () => {
      clock += 5 * 60_000;
      let committed: unknown;
      observed.afterPage = async (_page, n) => {
        if (n !== 1) return;
        observed.afterPage = undefined;
        committed = await storedCursor();
        await server!.stop('fast');
      };
      const pollsBefore = observed.polls.length;
      const historyBefore = await storedKeys().catch(() => new Set<string>());
      try {
        await core!.runner.runWorkspace({ workspaceId, eventId: 'server-down' });
      } finally {
        await server!.start();
      }
      const down = observed.polls[pollsBefore]!;
      expect(down.pages.length).toBe(2);
      expect(await storedCursor()).toEqual(committed);
      const lost = pageKeys(down.pages[1]!).filter((key) => !historyBefore.has(key));
      expect(lost.length).toBeGreaterThan(0);
      await recoverAndCompare(committed, lost);
    }, 60_000);
  });
});
