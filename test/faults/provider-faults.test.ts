/**
 * The Samsara and Geotab simulators misbehaving at random (seeded) rates: 5xx, rate limits, requests that hang
 * past the client timeout, answers that are not JSON and answers cut off half-way, on every request. Many poll runs
 * with the simulated clock moving and the backoff cleared between runs; then the faults stop, one clean poll, and
 * the store holds exactly what the simulators served for the bound devices: nothing lost, nothing duplicated. Every
 * failed run is recorded with the class of the fault that ended it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { createGeotabPollAdapter } from '../../src/providers/geotab/adapter.ts';
import { startGeotabSimulator } from '../../src/sim/geotab/simulator.ts';
import type { PollAdapter } from '../../src/providers/poll-adapter.ts';
import type { ProviderErrorClass } from '../../src/providers/provider-error.ts';
import { createSamsaraPollAdapter } from '../../src/providers/samsara/adapter.ts';
import { startSamsaraSimulator } from '../../src/sim/samsara/simulator.ts';
import type { FaultKind } from '../../src/sim/faults.ts';
import { FleetModel } from '../../src/sim/fleet-model.ts';
import type { RunningSimulator } from '../../src/sim/simulator.ts';
import { startTestCore, type TestCore } from '../support/core.ts';
import { RecordingFaults } from '../support/recording-faults.ts';
import { connectSimulator, expectStoreMatchesGroundTruth, type SimulatedConnection } from '../support/simulated.ts';
import { checkStoreInvariants, invariantViolations } from '../support/store-invariants.ts';

const runs = 30;
const rates = { server_error: 0.12, rate_limit: 0.08, timeout: 0.06, malformed: 0.1, truncated: 0.1 };
/** The class a poll run must record when this fault failed its last request. */
const classOf: Record<Exclude<FaultKind, 'auth'>, ProviderErrorClass> = {
  server_error: 'transient',
  timeout: 'transient',
  rate_limit: 'rate_limited',
  malformed: 'malformed_response',
  truncated: 'malformed_response',
};

let clock = Date.now() - 40 * 60_000;
const now = () => clock;
const samsaraFleet = new FleetModel({ seed: 901, vehicles: 8, startMs: clock, timeScale: 5 });
const geotabFleet = new FleetModel({ seed: 902, vehicles: 8, startMs: clock, timeScale: 5 });
const faults = { samsara: new RecordingFaults({}, 91), geotab: new RecordingFaults({}, 92) };
let samsara: RunningSimulator;
let geotab: RunningSimulator;
let core: TestCore;

beforeAll(async () => {
  // The simulators hold a `timeout` fault for 2 s; the clients give up after 400 ms, as they would on a stalled provider.
  samsara = await startSamsaraSimulator({ accounts: [{ credentials: { apiToken: 'faulty-samsara' }, fleet: samsaraFleet }], now, pageSize: 30, faults: faults.samsara, timeoutMs: 2000 });
  geotab = await startGeotabSimulator({
    accounts: [{ credentials: { database: 'faulty', userName: 'ops', password: 'pw' }, fleet: geotabFleet }],
    now,
    faults: faults.geotab,
    timeoutMs: 2000,
    authenticatePerMinute: 1000,
  });
  core = await startTestCore({
    polling: {
      adapters: new Map([
        ['samsara', createSamsaraPollAdapter({ timeoutMs: 400 }) as unknown as PollAdapter],
        ['geotab', createGeotabPollAdapter({ timeoutMs: 400, resultsLimit: 40, now }) as unknown as PollAdapter],
      ]),
      // Inline retries wait 250 ms, then 500 ms: the fault path is exercised without slowing the test down.
      runner: { random: () => 0, maxInlineRetryAfterMs: 1000 },
    },
  });
});
afterAll(async () => {
  await core?.close();
  await samsara?.stop();
  await geotab?.stop();
});

interface RunRecord {
  id: number;
  connection_id: string;
  provider: string;
  status: string;
  error_class: string | null;
  error_message: string | null;
  trigger_event_id: string;
}

describe('providers misbehaving at random rates', () => {
  it('stores exactly what was served once the faults stop, and records each failed run with the class of its fault', async () => {
    const workspaceId = (await createWorkspace(core.db, { name: 'Faulty providers depot', policy: { ...defaultPolicy, pollIntervalSeconds: 30 } })).id;
    const connections: Record<'samsara' | 'geotab', SimulatedConnection> = {
      // One Samsara vehicle is left unbound: it must show as unknown_device, never in the store.
      samsara: await connectSimulator(core.db, core.secretKey, workspaceId, {
        provider: 'samsara',
        baseUrl: samsara.url,
        credentials: { apiToken: 'faulty-samsara' },
        externalIds: samsaraFleet.vehicles.slice(0, 7).map((v) => v.samsaraId),
      }),
      geotab: await connectSimulator(core.db, core.secretKey, workspaceId, {
        provider: 'geotab',
        baseUrl: geotab.url,
        credentials: { database: 'faulty', userName: 'ops', password: 'pw' },
        externalIds: geotabFleet.vehicles.map((v) => v.geotabId),
      }),
    };
    const providerOf = new Map(Object.entries(connections).map(([provider, c]) => [c.connectionId, provider as 'samsara' | 'geotab']));
    faults.samsara.setRates(rates);
    faults.geotab.setRates(rates);

    const wrongClass: string[] = [];
    const failedClasses = new Map<string, number>();
    for (let i = 0; i < runs; i += 1) {
      const drawnBefore = { samsara: faults.samsara.drawn.length, geotab: faults.geotab.drawn.length };
      await core.runner.runWorkspace({ workspaceId, eventId: `faulty-${i}` });
      const { rows } = await core.db.query<RunRecord>(
        'SELECT id, connection_id, provider, status, error_class, error_message, trigger_event_id FROM poll_runs WHERE workspace_id = $1 AND trigger_event_id = $2',
        [workspaceId, `faulty-${i}`],
      );
      expect(rows.map((r) => r.status).sort(), `run ${i}: one finished record per connection`).toHaveLength(2);
      for (const run of rows) {
        const provider = providerOf.get(run.connection_id)!;
        const drawn = faults[provider].drawn.slice(drawnBefore[provider]);
        const last = drawn[drawn.length - 1];
        if (run.status === 'succeeded') {
          if (run.error_class !== null) wrongClass.push(`run ${i} ${provider}: succeeded with class ${run.error_class}`);
          continue;
        }
        failedClasses.set(`${provider}:${run.error_class}`, (failedClasses.get(`${provider}:${run.error_class}`) ?? 0) + 1);
        // The last request of a failed run is the one that failed it.
        const expected = last === undefined || last === 'auth' ? undefined : classOf[last];
        if (run.status !== 'failed' || run.error_class !== expected) {
          wrongClass.push(`run ${i} ${provider}: ${run.status} ${run.error_class} (${run.error_message}), last fault ${String(last)} of [${drawn.join(',')}]`);
        }
      }
      // The backoff and rate limit have passed (as if the scheduler had waited them out); the fleets moved on.
      await core.db.query('UPDATE connection_poll_states SET next_poll_at = NULL, rate_limited_until = NULL WHERE workspace_id = $1', [workspaceId]);
      clock += 20_000;
    }
    expect(wrongClass).toEqual([]);
    // The faults did fail runs, of every class they can cause.
    for (const provider of ['samsara', 'geotab']) {
      for (const errorClass of ['transient', 'malformed_response']) {
        expect(failedClasses.get(`${provider}:${errorClass}`) ?? 0, `${provider} runs failed as ${errorClass}`).toBeGreaterThan(0);
      }
    }
    expect(failedClasses.get('geotab:rate_limited') ?? 0, 'Geotab runs failed as rate_limited').toBeGreaterThan(0);
    for (const provider of ['samsara', 'geotab'] as const) {
      for (const kind of Object.keys(rates) as FaultKind[]) expect(faults[provider].injected[kind], `${provider} ${kind} faults`).toBeGreaterThan(0);
    }

    // The faults stop; one clean poll catches up from the committed cursors.
    faults.samsara.setRates({});
    faults.geotab.setRates({});
    await core.runner.runWorkspace({ workspaceId, eventId: 'clean' });
    const { rows: clean } = await core.db.query<RunRecord>('SELECT status FROM poll_runs WHERE workspace_id = $1 AND trigger_event_id = $2', [workspaceId, 'clean']);
    expect(clean.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);

    const sam = await expectStoreMatchesGroundTruth(core.db, workspaceId, connections.samsara, samsara.groundTruth, 'faulty-samsara');
    const geo = await expectStoreMatchesGroundTruth(core.db, workspaceId, connections.geotab, geotab.groundTruth, 'faulty');
    expect(sam.stored).toBeGreaterThan(200);
    expect(geo.stored).toBeGreaterThan(200);
    // Pages were served again after failed runs (re-read from the committed cursor) and absorbed as duplicates.
    expect(samsara.groundTruth.all().length + geotab.groundTruth.all().length).toBeGreaterThan(samsara.groundTruth.unique().size + geotab.groundTruth.unique().size);
    expect(invariantViolations(await checkStoreInvariants(core.db, workspaceId))).toEqual([]);
    const { rows: rejected } = await core.db.query<{ reason: string; external_device_id: string }>(
      'SELECT DISTINCT reason, external_device_id FROM ingest_rejections WHERE workspace_id = $1',
      [workspaceId],
    );
    expect(rejected).toEqual([{ reason: 'unknown_device', external_device_id: samsaraFleet.vehicles[7]!.samsaraId }]);
  }, 110_000);
});
