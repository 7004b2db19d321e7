/**
 * Bad input for POST /internal/v1/ingest (DESIGN §3-4), property by property, over real HTTP with the service
 * token, on a test core whose database holds real fleets. Whatever the body:
 *
 * - the answer is a 200 or a 4xx `application/problem+json` with a `code`: never a 5xx, never a dropped connection;
 * - a 4xx writes nothing;
 * - a 200 answers each update in order, each reading with a known status, a reason exactly on rejections, and
 *   every rejection is stored (one row per rejected update, one per rejected reading of a processed update);
 * - the store keeps its invariants: each snapshot row is the newest history row of its vehicle and signal, every
 *   stored value is one the catalogue accepts, nothing in history is dated beyond the clock-skew allowance.
 *
 * Runs are seeded and bounded. A failure prints fast-check's seed and path; put them in `runs()` to replay it.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chargingStates, checkSignalValue, connectivityStates, signalNames, type SignalName } from '../../src/canonical/signals.ts';
import { ingestLimits, parseTimestamp, updateEnvelopeSchema, type UpdateSource } from '../../src/canonical/update.ts';
import { futureAllowanceMs, readingStatuses, rejectionReasons, type RejectionReason } from '../../src/core/ingest/reasons.ts';
import { updateConnection } from '../../src/core/registry/connections.ts';
import { updateVehicle } from '../../src/core/registry/vehicles.ts';
import { defaultPolicy } from '../../src/core/registry/workspaces.ts';
import { startTestCore, type HttpAnswer, type TestCore } from '../support/core.ts';
import { createFleet, type TestFleet } from '../support/fleet.ts';
import {
  anyJsonText,
  edgeTimestamps,
  jsonText,
  numberToken,
  oddText,
  randomTimestamp,
  reachableJsonText,
  scalarText,
  spelledInstant,
  type JsonText,
} from '../support/hostile-input.ts';

const seed = 20_261_128;
const dayMs = 86_400_000;
/** Whole seconds, so that every spelling of a recent instant names it exactly. */
const suiteStart = Math.floor(Date.now() / 1000) * 1000;
const retentionMs = defaultPolicy.retentionDays * dayMs;

/** Seeded, bounded runs: a property that runs out of time stops early rather than holding the suite. */
function runs(numRuns: number, examples: unknown[][] = []): fc.Parameters<any> {
  return { seed, numRuns, examples, interruptAfterTimeLimit: 45_000, markInterruptAsFailure: false };
}

let core: TestCore;
let identities: Identity[];

// ---------------------------------------------------------------------------------------------------------------
// The fleets, and what the ingest handler must say about an update of each identity.

interface Identity {
  label: string;
  workspaceId: string;
  provider: string;
  connectionId: string;
  externalDeviceId: string;
  /** The reason a well-formed update of this identity from `source` is rejected with; undefined when processed. */
  expected(source: UpdateSource): RejectionReason | undefined;
}

/** DESIGN §4 steps 2-3: workspace, telematics enabled, ownership by cutover, then the device. */
function rules(cutover: 'core' | 'legacy', device?: RejectionReason) {
  return (source: UpdateSource): RejectionReason | undefined =>
    (cutover === 'core' && source === 'legacy_poll') || (cutover === 'legacy' && source === 'poll') ? 'source_not_owner' : device;
}

async function createIdentities(): Promise<Identity[]> {
  const key = core.secretKey;
  const active = await createFleet(core.db, key, { vehicles: 4, name: 'Active depot' });
  await updateVehicle(core.db, active.workspaceId, active.vehicles[3]!.id, { active: false });
  const disabled = await createFleet(core.db, key, { vehicles: 1, name: 'Disabled depot', policy: { enabled: false } });
  const legacy = await createFleet(core.db, key, { vehicles: 1, name: 'Legacy depot', provider: 'traccar', cutover: 'legacy' });
  const offline = await createFleet(core.db, key, { vehicles: 1, name: 'Offline connection depot' });
  await updateConnection(core.db, key, offline.workspaceId, offline.connectionId, { enabled: false });

  const of = (fleet: TestFleet, vehicle = 0) => ({
    workspaceId: fleet.workspaceId,
    provider: fleet.provider,
    connectionId: fleet.connectionId,
    externalDeviceId: fleet.vehicles[vehicle]!.externalId,
  });
  const unknownWorkspace = { ...of(active), workspaceId: randomUUID() };
  return [
    ...[0, 1, 2].map((v) => ({ label: `active vehicle ${v}`, ...of(active, v), expected: rules('core') })),
    {
      label: 'active vehicle 0, UUIDs in upper case',
      ...of(active),
      workspaceId: active.workspaceId.toUpperCase(),
      connectionId: active.connectionId.toUpperCase(),
      expected: rules('core'),
    },
    { label: 'inactive vehicle', ...of(active, 3), expected: rules('core', 'device_inactive') },
    { label: 'unbound device', ...of(active), externalDeviceId: 'dev-999', expected: rules('core', 'unknown_device') },
    { label: 'device id with a trailing space', ...of(active), externalDeviceId: 'dev-0 ', expected: rules('core', 'unknown_device') },
    { label: 'device id with bidi marks and emoji', ...of(active), externalDeviceId: '\u202edev-0\u200f😀', expected: rules('core', 'unknown_device') },
    { label: 'another provider than the connection', ...of(active), provider: 'geotab', expected: rules('core', 'unknown_device') },
    { label: "another workspace's connection", ...of(active), connectionId: legacy.connectionId, expected: rules('core', 'unknown_device') },
    { label: "another workspace's device", ...of(offline), workspaceId: active.workspaceId, expected: rules('core', 'unknown_device') },
    { label: 'telematics disabled', ...of(disabled), expected: () => 'telematics_disabled' },
    { label: 'legacy cutover', ...of(legacy), expected: rules('legacy') },
    { label: 'disabled connection', ...of(offline), expected: rules('core', 'device_inactive') },
    { label: 'unknown workspace', ...unknownWorkspace, expected: () => 'unknown_workspace' },
    { label: 'nil workspace', ...of(active), workspaceId: '00000000-0000-0000-0000-000000000000', expected: () => 'unknown_workspace' },
  ];
}

beforeAll(async () => {
  core = await startTestCore();
  identities = await createIdentities();
});
afterAll(async () => {
  await core?.close();
});

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries. Each generated update knows whether it is well-formed by construction (`pristine`): every field
// present, from its good generator, readings included. Hostile fields may still be valid by chance; they only
// lose the stronger expectations.

interface Field {
  entries: [string, JsonText][];
  ok: boolean;
}

const shadowed = fc.oneof({ weight: 14, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: reachableJsonText });

/** A field: its good value, or a hostile one, or none; sometimes after a duplicate of its key that JSON.parse drops. */
function field(key: string, good: fc.Arbitrary<JsonText>, bad: fc.Arbitrary<JsonText>, goodWeight = 40): fc.Arbitrary<Field> {
  const value = fc.oneof(
    { weight: goodWeight, arbitrary: good.map((text) => ({ text: text as JsonText | undefined, ok: true })) },
    { weight: 1, arbitrary: bad.map((text) => ({ text: text as JsonText | undefined, ok: false })) },
    { weight: 1, arbitrary: fc.constant({ text: undefined as JsonText | undefined, ok: false }) },
  );
  return fc.tuple(value, shadowed).map(([{ text, ok }, shadow]) => ({
    entries: [...(shadow === undefined ? [] : [[key, shadow] as [string, JsonText]]), ...(text === undefined ? [] : [[key, text] as [string, JsonText]])],
    ok,
  }));
}

/** Keys nobody asked for: ignored by the handler, unless they trip the parser (a `constructor.prototype`). */
const extraEntries = fc.oneof(
  { weight: 8, arbitrary: fc.constant([] as [string, JsonText][]) },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(fc.constantFrom('constructor', 'toString', 'hasOwnProperty', 'note'), oddText), reachableJsonText), { maxLength: 2 }) },
);

function object(fields: readonly Field[], extra: [string, JsonText][], order: readonly number[]): JsonText {
  return jsonText.object([...order.map((i) => fields[i]!.entries).flat(), ...extra]);
}

const string = (text: string) => jsonText.string(text);
const wrongType = fc.oneof(scalarText, reachableJsonText);

/** Instants for readings: mostly the last few minutes (so they collide and repeat), some days back, future, too old. */
const readingInstant = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 300 }).map((k) => suiteStart - k * 1000) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1, 30, 89), fc.integer({ min: 0, max: 60 })).map(([d, k]) => suiteStart - d * dayMs - k * 1000) },
  { weight: 1, arbitrary: fc.constantFrom(60_000, 119_000, 121_000, 600_000, dayMs, 365 * dayMs).map((ahead) => suiteStart + ahead) },
  { weight: 1, arbitrary: fc.constantFrom(91, 3650).map((back) => suiteStart - back * dayMs) },
);

const validTimestamp = fc.oneof(
  { weight: 12, arbitrary: readingInstant.chain(spelledInstant) },
  { weight: 1, arbitrary: fc.constantFrom(...edgeTimestamps.valid) },
);
const badTimestamp = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...edgeTimestamps.outOfRange).map(string) },
  { weight: 2, arbitrary: fc.constantFrom(...edgeTimestamps.invalid).map(string) },
  { weight: 1, arbitrary: randomTimestamp.map(string) },
  { weight: 1, arbitrary: wrongType },
);

const double = (min: number, max: number) =>
  fc.oneof(fc.double({ min, max, noNaN: true }).map((n) => JSON.stringify(n)), fc.constantFrom(String(min), String(max), `${max}.0`));

/** A value the catalogue accepts for `signal`, as JSON text. */
function validValue(signal: SignalName): fc.Arbitrary<JsonText> {
  switch (signal) {
    case 'soc_pct':
      return fc.oneof(double(0, 100), fc.constantFrom('-0', '1e-400'));
    case 'odometer_km':
      return fc.oneof(fc.integer({ min: 0, max: 2000 }).map(String), double(0, 10_000_000));
    case 'location':
      return fc
        .tuple(double(-90, 90), double(-180, 180), fc.boolean())
        .map(([lat, lon, swapped]) => jsonText.object(swapped ? [['lon', lon], ['lat', lat]] : [['lat', lat], ['lon', lon]]));
    case 'heading_deg':
      return double(0, 360);
    case 'speed_kph':
      return double(0, 400);
    case 'range_km':
      return double(0, 2000);
    case 'battery_temp_c':
      return double(-60, 100);
    case 'charge_power_kw':
      return double(0, 4000);
    case 'charging_state':
      return fc.constantFrom(...chargingStates).map(string);
    case 'connectivity_state':
      return fc.constantFrom(...connectivityStates).map(string);
    case 'tracker_battery_pct':
      return double(0, 100);
    case 'plugged_in':
    case 'ignition':
      return fc.constantFrom('true', 'false');
  }
}

/** Values just outside the catalogue, or of a near-miss type. */
function nearMiss(signal: SignalName): fc.Arbitrary<JsonText> {
  switch (signal) {
    case 'location':
      return fc.constantFrom(
        '{"lat":91,"lon":0}',
        '{"lat":0,"lon":-180.0000001}',
        '{"lat":1e309,"lon":0}',
        '{"lat":"45","lon":"7"}',
        '{"lat":45}',
        '{"lat":45,"lon":7,"alt":300}',
        '{"lat":91,"lat":45,"lon":7}',
        '{"lat":45,"lon":7,"lon":181}',
        '[45,7]',
        '"45,7"',
      );
    case 'charging_state':
      return fc.constantFrom('"Charging"', '"charging "', '""', '"\\u0000"', '2', 'null');
    case 'plugged_in':
    case 'ignition':
      return fc.constantFrom('"true"', '1', '0', '"on"', 'null');
    default:
      return fc.constantFrom('-0.000001', '1e309', '-1e309', '1e308', '"50"', '" 50"', '"5e1"', 'null', 'true', '[50]', '{"value":50}', '10000001', '4000.0001', '-60.5');
  }
}

const unknownSignals = ['SOC_PCT', 'soc', 'soc_pct ', 'odometer_mi', 'toString', 'constructor', '__proto__', 'hasOwnProperty', '🔋', '\u202esoc_pct', 'x'.repeat(64)];
const badSignals = fc.oneof(fc.constantFrom('', 'x'.repeat(65), 'soc\u0000pct', 'soc_pct\n', '\ud800', 'soc\udfff').map(string), oddText.map(string), wrongType);

interface GenReading {
  text: JsonText;
  ok: boolean;
}

const reading: fc.Arbitrary<GenReading> = fc
  .oneof({ weight: 10, arbitrary: fc.constantFrom(...signalNames) }, { weight: 1, arbitrary: fc.constantFrom(...unknownSignals) })
  .chain((signal) =>
    fc.tuple(
      field('signal', fc.constant(string(signal)), badSignals, 30),
      field(
        'value',
        fc.oneof(
          { weight: 8, arbitrary: isKnownSignal(signal) ? validValue(signal) : scalarText },
          { weight: 2, arbitrary: isKnownSignal(signal) ? nearMiss(signal) : scalarText },
          { weight: 1, arbitrary: numberToken },
          { weight: 1, arbitrary: wrongType },
          { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 50, max: 3000 }), fc.constantFrom<'array' | 'object'>('array', 'object')).map(([depth, kind]) => jsonText.nested(depth, kind)) },
        ),
        fc.constant('null'),
        30,
      ),
      field('observedAt', validTimestamp.map(string), badTimestamp, 30),
      extraEntries,
      fc.constantFrom([0, 1, 2], [2, 1, 0], [1, 0, 2]),
    ),
  )
  .map(([signal, value, observedAt, extra, order]) => ({
    text: object([signal, value, observedAt], extra, order),
    ok: signal.ok && value.ok && observedAt.ok,
  }));

function isKnownSignal(name: string): name is SignalName {
  return (signalNames as readonly string[]).includes(name);
}

/** Readings, and now and then one of them twice (a duplicate within the update). */
const readingList = fc.tuple(fc.array(reading, { maxLength: 8 }), fc.option(fc.nat(), { freq: 4 })).map(([list, repeat]) =>
  repeat === null || list.length === 0 ? list : [...list, list[repeat % list.length]!],
);

const tooManyReadings = fc.constant(jsonText.array(Array.from({ length: ingestLimits.readingsPerUpdate + 1 }, () => '{"signal":"soc_pct","value":1,"observedAt":"2024-05-01T12:00:00Z"}')));

interface GenUpdate {
  text: JsonText;
  pristine: boolean;
  identity: Identity;
  source: UpdateSource;
}

const sourceArb = fc.constantFrom<UpdateSource>('poll', 'stream', 'poll', 'stream', 'legacy_poll');

function updateArb(): fc.Arbitrary<GenUpdate> {
  // Mostly the fleet's active vehicles, so that most updates reach the readings rules and the store.
  const identity = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...identities.slice(0, 4)) }, { weight: 2, arbitrary: fc.constantFrom(...identities.slice(4)) });
  return fc.tuple(identity, sourceArb).chain(([id, source]) =>
    fc
      .tuple(
        field('workspaceId', fc.constant(string(id.workspaceId)), fc.oneof(fc.constantFrom('"not-a-uuid"', string(id.workspaceId.slice(1)), string(`${id.workspaceId}\u0000`), string(` ${id.workspaceId}`)), wrongType)),
        field('provider', fc.constant(string(id.provider)), fc.oneof(fc.constantFrom('""', string('x'.repeat(65)), '"sam\\u0000sara"'), wrongType)),
        field('connectionId', fc.constant(string(id.connectionId)), fc.oneof(fc.constantFrom('"00000000-0000-0000-0000"', '"{' + id.connectionId + '}"'), wrongType)),
        field('externalDeviceId', fc.constant(string(id.externalDeviceId)), fc.oneof(fc.constantFrom('""', '"dev\\u0000"', '"\\ud800"', string('d'.repeat(257))), oddText.map(string), wrongType)),
        field('source', fc.constant(string(source)), fc.oneof(fc.constantFrom('"POLL"', '"carrier-pigeon"', '"stream "', '""'), wrongType)),
        field('receivedAt', fc.oneof({ weight: 8, arbitrary: spelledInstant(suiteStart).map(string) }, { weight: 1, arbitrary: fc.constantFrom(...edgeTimestamps.valid).map(string) }), badTimestamp, 6),
        fc.oneof(
          { weight: 20, arbitrary: readingList.map((list) => ({ text: jsonText.array(list.map((r) => r.text)), ok: list.every((r) => r.ok) })) },
          { weight: 1, arbitrary: tooManyReadings.map((text) => ({ text, ok: false })) },
          { weight: 1, arbitrary: wrongType.map((text) => ({ text, ok: false })) },
        ),
        extraEntries,
        fc.shuffledSubarray([0, 1, 2, 3, 4, 5, 6], { minLength: 7 }),
        fc.oneof({ weight: 30, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: reachableJsonText }),
      )
      .map(([workspaceId, provider, connectionId, externalDeviceId, src, receivedAt, readings, extra, order, junk]) => {
        const fields: Field[] = [workspaceId, provider, connectionId, externalDeviceId, src, receivedAt, { entries: [['readings', readings.text]], ok: readings.ok }];
        // Now and then the update is not an object at all.
        if (junk !== undefined) return { text: junk, pristine: false, identity: id, source };
        return { text: object(fields, extra, order), pristine: fields.every((f) => f.ok), identity: id, source };
      }),
  );
}

interface GenBody {
  text: JsonText;
  updates: GenUpdate[];
}

function bodyArb(): fc.Arbitrary<GenBody> {
  return fc
    .tuple(
      fc.array(updateArb(), { maxLength: 6 }),
      fc.option(fc.nat(), { freq: 4 }),
      fc.oneof(
        { weight: 12, arbitrary: fc.constant([] as [string, JsonText][]) },
        { weight: 1, arbitrary: reachableJsonText.map((junk) => [['updates', junk]] as [string, JsonText][]) },
        { weight: 1, arbitrary: fc.constantFrom<[string, JsonText][]>([['__proto__', '{"admin":true}']], [['constructor', '{"prototype":{}}']], [['constructor', '1']]) },
      ),
    )
    .map(([list, repeat, before]) => {
      // A repeated update sends the same readings twice in one batch: duplicates, never errors.
      const updates = repeat === null || list.length === 0 ? list : [...list, list[repeat % list.length]!];
      return { text: jsonText.object([...before, ['updates', jsonText.array(updates.map((u) => u.text))]]), updates };
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Talking to the endpoint, and what every answer must satisfy.

interface StoreState {
  history: number;
  snapshot: number;
  /** Rejections stored: the rows' counts (one row per cause and hour, migration 0016), summed, and by reason. */
  rejections: number;
  rejectionsByReason: Record<string, number>;
  lastSyncedAt: string | null;
  clock: Date;
}

async function storeState(): Promise<StoreState> {
  const { rows } = await core.db.query<{ history: number; snapshot: number; rejections: number; by_reason: Record<string, number> | null; last_synced_at: Date | null; clock: Date }>(
    `SELECT (SELECT count(*) FROM signal_history)::int AS history,
            (SELECT count(*) FROM signal_snapshot)::int AS snapshot,
            (SELECT coalesce(sum(count), 0) FROM ingest_rejections)::int AS rejections,
            (SELECT jsonb_object_agg(reason, n) FROM (SELECT reason, sum(count)::int AS n FROM ingest_rejections GROUP BY reason) r) AS by_reason,
            (SELECT max(last_synced_at) FROM vehicles) AS last_synced_at,
            clock_timestamp() AS clock`,
  );
  const row = rows[0]!;
  return {
    history: row.history,
    snapshot: row.snapshot,
    rejections: row.rejections,
    rejectionsByReason: row.by_reason ?? {},
    lastSyncedAt: row.last_synced_at?.toISOString() ?? null,
    clock: row.clock,
  };
}

const written = (s: StoreState) => ({ history: s.history, snapshot: s.snapshot, rejections: s.rejections, lastSyncedAt: s.lastSyncedAt });

/** The updates the server parsed out of a body (same parser rules: a leading BOM is dropped). */
function sentUpdates(body: string | Uint8Array): unknown[] {
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  return (JSON.parse(text.replace(/^\uFEFF/, '')) as { updates: unknown[] }).updates;
}

interface Exchange {
  answer: HttpAnswer<any>;
  sent: unknown[];
  /** The server clock during the request lies between these. */
  from: number;
  to: number;
}

/** Posts a body and checks everything every answer must satisfy, then the store's invariants. */
async function exchange(body: string | Uint8Array, contentType: string | null = 'application/json'): Promise<Exchange> {
  const before = await storeState();
  const from = Date.now();
  // A dropped connection makes fetch throw, which fails the property with the input that caused it.
  const answer = await core.http.request('POST', '/internal/v1/ingest', { token: core.serviceToken, rawBody: body, contentType });
  const to = Date.now();
  const after = await storeState();

  expect(answer.status >= 500, `answered ${answer.status}: ${answer.text.slice(0, 300)}`).toBe(false);
  expect([200, 400, 401, 403, 413, 415]).toContain(answer.status);
  let sent: unknown[] = [];
  if (answer.status >= 400) {
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({ status: answer.status, code: expect.stringMatching(/^[a-z_]+$/), type: expect.any(String), title: expect.any(String) });
    expect(written(after), 'a 4xx answer writes nothing').toEqual(written(before));
  } else {
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    sent = sentUpdates(body);
    await expectResults(answer.body.results, sent, before, after);
  }
  await expectStoreInvariants(before.clock);
  return { answer, sent, from, to };
}

async function expectResults(results: any[], sent: unknown[], before: StoreState, after: StoreState): Promise<void> {
  expect(results).toHaveLength(sent.length);
  const reasons: string[] = [];
  let stored = 0;
  results.forEach((result, index) => {
    const where = `update ${index}`;
    expect(result.index, where).toBe(index);
    expect(['processed', 'rejected'], where).toContain(result.status);
    expect(Array.isArray(result.readings), where).toBe(true);
    if (result.status === 'rejected') {
      expect(rejectionReasons, where).toContain(result.reason);
      reasons.push(result.reason);
      for (const r of result.readings) expect(r, where).toEqual({ signal: expect.any(String), status: 'rejected', reason: result.reason });
    } else {
      expect(result, where).not.toHaveProperty('reason');
    }
    const sentReadings = (sent[index] as { readings?: { signal?: unknown }[] } | null)?.readings;
    if (result.reason === 'malformed') expect(result.readings, where).toEqual([]);
    else expect(result.readings.map((r: { signal: string }) => r.signal), where).toEqual(sentReadings!.map((r) => r.signal));
    for (const r of result.readings) {
      expect(readingStatuses, where).toContain(r.status);
      if (r.status === 'rejected') {
        expect(rejectionReasons, where).toContain(r.reason);
        if (result.status === 'processed') reasons.push(r.reason);
      } else {
        expect(r, where).not.toHaveProperty('reason');
        if (r.status !== 'duplicate') stored += 1;
      }
    }
  });

  // Every rejection is stored, once: counted on its cause's row (one per rejected update, one per rejected reading
  // of a processed update), so the counts grow by exactly the rejections answered, reason by reason.
  expect(after.rejections - before.rejections, 'stored rejections').toBe(reasons.length);
  const grown: Record<string, number> = {};
  for (const [reason, n] of Object.entries(after.rejectionsByReason)) if (n !== (before.rejectionsByReason[reason] ?? 0)) grown[reason] = n - (before.rejectionsByReason[reason] ?? 0);
  const answered: Record<string, number> = {};
  for (const reason of reasons) answered[reason] = (answered[reason] ?? 0) + 1;
  expect(grown, 'reasons of the stored rejections').toEqual(answered);
  // Accepted and late readings, and only they, join history.
  expect(after.history - before.history, 'history rows written').toBe(stored);
  expect(after.snapshot).toBeGreaterThanOrEqual(before.snapshot);
}

/**
 * The store's invariants: every snapshot row is the newest history row of its vehicle and signal (value and
 * observed time) and every signal in history has one; each value stored since `since` (or ever) passes the
 * catalogue; nothing in history is dated beyond the clock-skew allowance.
 */
async function expectStoreInvariants(since: Date | null): Promise<void> {
  const stale = await core.db.query(
    `SELECT s.vehicle_id, s.signal, s.value AS snapshot_value, s.observed_at AS snapshot_at, h.value AS history_value, h.observed_at AS history_at
       FROM signal_snapshot s
       LEFT JOIN LATERAL (
         SELECT value, observed_at FROM signal_history h
          WHERE h.workspace_id = s.workspace_id AND h.vehicle_id = s.vehicle_id AND h.signal = s.signal
          ORDER BY h.observed_at DESC LIMIT 1) h ON true
      WHERE h.observed_at IS DISTINCT FROM s.observed_at OR h.value IS DISTINCT FROM s.value`,
  );
  expect(stale.rows, 'snapshot rows that are not the newest history row').toEqual([]);
  const orphans = await core.db.query(
    `SELECT DISTINCT h.vehicle_id, h.signal FROM signal_history h
      WHERE NOT EXISTS (SELECT 1 FROM signal_snapshot s WHERE s.workspace_id = h.workspace_id AND s.vehicle_id = h.vehicle_id AND s.signal = h.signal)`,
  );
  expect(orphans.rows, 'signals in history without a snapshot row').toEqual([]);
  const future = await core.db.query(
    `SELECT vehicle_id, signal, observed_at FROM signal_history WHERE observed_at > clock_timestamp() + make_interval(secs => $1)`,
    [futureAllowanceMs / 1000],
  );
  expect(future.rows, 'history rows dated in the future').toEqual([]);

  const { rows } = await core.db.query<{ kind: string; signal: string; value: unknown; observed_at: Date }>(
    `SELECT 'history' AS kind, signal, value, observed_at FROM signal_history WHERE $1::timestamptz IS NULL OR ingested_at >= $1
     UNION ALL
     SELECT 'snapshot', signal, value, observed_at FROM signal_snapshot WHERE $1::timestamptz IS NULL OR updated_at >= $1`,
    [since],
  );
  const notAfter = Date.now() + futureAllowanceMs;
  for (const row of rows) {
    const check = checkSignalValue(row.signal, row.value);
    expect(check.ok ? 'ok' : check.detail, `${row.kind} ${row.signal} ${JSON.stringify(row.value)}`).toBe('ok');
    expect(row.observed_at.getTime(), `${row.kind} ${row.signal} observed at ${row.observed_at.toISOString()}`).toBeLessThanOrEqual(notAfter);
  }
}

/** JSON for a message; a value nested too deep for JSON.stringify is still a value the handler must answer. */
function preview(value: unknown): string {
  try {
    return String(JSON.stringify(value)).slice(0, 200);
  } catch {
    return '[nested too deep to print]';
  }
}

/**
 * What the rules say of each reading of a processed update, where the answer can be known: a value the catalogue
 * refuses is rejected with its reason; an observed time clearly beyond the skew allowance is `future_timestamp`,
 * one clearly beyond retention `too_old`; anything else is stored or a duplicate (or, for a counter,
 * `implausible_value`). Times within the request's own duration of a boundary are left alone.
 */
function expectReadingOutcomes(result: any, raw: { readings: { signal: string; value: unknown; observedAt: string }[] }, from: number, to: number): void {
  raw.readings.forEach((sentReading, i) => {
    const got = result.readings[i];
    const where = `reading ${i} ${preview(sentReading)}`;
    const check = checkSignalValue(sentReading.signal, sentReading.value);
    if (!check.ok) {
      expect(got, where).toEqual({ signal: sentReading.signal, status: 'rejected', reason: check.reason });
      return;
    }
    const observed = parseTimestamp(sentReading.observedAt)!;
    if (observed > to + futureAllowanceMs) expect(got.reason, where).toBe('future_timestamp');
    else if (observed < from - retentionMs) expect(got.reason, where).toBe('too_old');
    else if (observed <= from + futureAllowanceMs && observed >= to - retentionMs) {
      if (got.status === 'rejected') {
        expect(got.reason, where).toBe('implausible_value');
        expect(sentReading.signal, where).toBe('odometer_km');
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe('POST /internal/v1/ingest under hostile input', () => {
  it('answers mixed valid and invalid updates as the rules say, and stores every rejection', { timeout: 120_000 }, async () => {
    let processed = 0;
    let pristine = 0;
    await fc.assert(
      fc.asyncProperty(bodyArb(), async (body) => {
        const { answer, sent, from, to } = await exchange(body.text);
        if (answer.status !== 200) return;
        answer.body.results.forEach((result: any, i: number) => {
          const raw = sent[i];
          const gen = body.updates[i]!;
          const where = `update ${i} (${gen.identity.label}, ${gen.source})`;
          const shape = updateEnvelopeSchema.safeParse(raw);
          expect(result.reason === 'malformed', `${where}: malformed iff the envelope schema refuses it`).toBe(!shape.success);
          if (gen.pristine) {
            pristine += 1;
            expect(shape.success, `${where}: a well-formed update passes the shape check`).toBe(true);
            expect(result.reason, where).toBe(gen.identity.expected(gen.source));
          }
          if (result.status === 'processed') {
            processed += 1;
            expectReadingOutcomes(result, raw as never, from, to);
          }
        });
      }),
      runs(200),
    );
    // The generator must reach the deep end of the handler, not only its shape check.
    expect(pristine).toBeGreaterThan(50);
    expect(processed).toBeGreaterThan(30);
  });

  it('answers random JSON bodies with a result or a problem, never a failure', { timeout: 120_000 }, async () => {
    const envelopeKeys = fc.constantFrom('workspaceId', 'provider', 'connectionId', 'externalDeviceId', 'source', 'receivedAt', 'readings', 'signal', 'value', 'observedAt');
    const randomUpdate = fc.array(fc.tuple(envelopeKeys, anyJsonText), { maxLength: 8 }).map(jsonText.object);
    const randomBody = fc.oneof(
      anyJsonText,
      anyJsonText.map((updates) => jsonText.object([['updates', updates]])),
      fc.array(fc.oneof(anyJsonText, randomUpdate), { maxLength: 6 }).map((updates) => jsonText.object([['updates', jsonText.array(updates)]])),
    );
    await fc.assert(
      fc.asyncProperty(randomBody, async (body) => {
        await exchange(body);
      }),
      runs(150),
    );
  });

  it('survives raw-text attacks: deep nesting, broken JSON, bad UTF-8, duplicate and prototype keys, content types', { timeout: 120_000 }, async () => {
    const first = () => identities[0]!;
    const update = (entries: Partial<Record<'workspaceId' | 'provider' | 'connectionId' | 'externalDeviceId' | 'source' | 'receivedAt' | 'readings', JsonText>>) => {
      const id = first();
      return jsonText.object(
        Object.entries({
          workspaceId: string(id.workspaceId),
          provider: string(id.provider),
          connectionId: string(id.connectionId),
          externalDeviceId: string(id.externalDeviceId),
          source: '"poll"',
          receivedAt: string(new Date().toISOString()),
          readings: '[]',
          ...entries,
        }),
      );
    };
    const readingWith = (value: JsonText, signal: JsonText = '"soc_pct"') => `[{"signal":${signal},"value":${value},"observedAt":${string(new Date(suiteStart - 5000).toISOString())}}]`;
    const body = (updates: JsonText) => `{"updates":${updates}}`;

    type Attack =
      | { kind: 'deep'; depth: number; nesting: 'array' | 'object'; place: 'body' | 'updates' | 'update' | 'readings' | 'value' | 'signal' | 'workspaceId' }
      | { kind: 'broken'; text: string }
      | { kind: 'truncated'; cut: number }
      | { kind: 'bytes'; bytes: readonly number[]; place: 'workspaceId' | 'externalDeviceId' | 'signal' | 'key' }
      | { kind: 'keys'; text: string }
      | { kind: 'contentType'; contentType: string | null };

    const attack: fc.Arbitrary<Attack> = fc.oneof(
      fc.record({
        kind: fc.constant('deep' as const),
        depth: fc.oneof(fc.integer({ min: 1000, max: 20_000 }), fc.integer({ min: 20_000, max: 400_000 })),
        nesting: fc.constantFrom<'array' | 'object'>('array', 'object'),
        place: fc.constantFrom<'body' | 'updates' | 'update' | 'readings' | 'value' | 'signal' | 'workspaceId'>('body', 'updates', 'update', 'readings', 'value', 'signal', 'workspaceId'),
      }),
      fc.record({
        kind: fc.constant('broken' as const),
        text: fc.constantFrom(
          '', ' ', '\n', 'null', 'true', '0', '"updates"', '[]', '{}', '{"updates":[],}', "{'updates':[]}", '{"updates":[NaN]}', '{"updates":[Infinity]}',
          '{"updates":[-Infinity]}', '{"updates":[undefined]}', '{"updates":[]} {"updates":[]}', '{"updates":[]}//', '/*c*/{"updates":[]}',
          '\ufeff{"updates":[]}', '\ufeff\ufeff{"updates":[]}', '{"updates":["a\u0000b"]}', '{"updates":["a\nb"]}', '{"updates":["\\x41"]}', '{"updates":["\\u12"]}',
          '{"updates":[01]}', '{"updates":[.5]}', '{"updates":[+1]}', '{"updates":[0x10]}', '{"updates":[1e]}', '{"updates"', '{"updates":[]}\u0000',
          '{"updates":[\'x\']}', '{updates:[]}', '{"updates":[]', '{"updates":[]}}', '\u0000', '{"updates":[{"a":1,}]}',
        ),
      }),
      fc.record({ kind: fc.constant('truncated' as const), cut: fc.nat() }),
      fc.record({
        kind: fc.constant('bytes' as const),
        bytes: fc.constantFrom([0xff], [0xfe, 0xff], [0xc0, 0x80], [0xc1, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]),
        place: fc.constantFrom<'workspaceId' | 'externalDeviceId' | 'signal' | 'key'>('workspaceId', 'externalDeviceId', 'signal', 'key'),
      }),
      fc.record({
        kind: fc.constant('keys' as const),
        text: fc.constantFrom(
          body(`[${update({})}]`).replace('{"workspaceId"', '{"__proto__":{"polluted":true},"workspaceId"'),
          body(`[${update({})}]`).replace('{"workspaceId"', '{"\\u005f_proto__":{},"workspaceId"'),
          body(`[${update({})}]`).replace('{"workspaceId"', '{"constructor":{"prototype":{"polluted":true}},"workspaceId"'),
          body(`[${update({})}]`).replace('{"workspaceId"', '{"constructor":1,"prototype":2,"toString":"x","workspaceId"'),
          body(`[${update({ readings: readingWith('{"lat":1,"lon":2,"__proto__":{"lat":3}}', '"location"') })}]`),
          body(`[${update({ readings: readingWith('{"lat":1,"lon":2,"constructor":{}}', '"location"') })}]`),
          `{"updates":"none","updates":[${update({ readings: readingWith('50') })}]}`,
          `{"updates":[${update({ readings: readingWith('50') })}],"updates":"none"}`,
          body(`[${update({ workspaceId: '"x"' }).replace('{', `{"workspaceId":${string(first().workspaceId)},`)}]`),
          body(`[${update({ readings: readingWith('50') }).replace('{', '{"readings":"none",')}]`),
          body(`[${update({ readings: '[{"signal":"soc_pct","signal":"bogus","value":50,"value":"x","observedAt":"x","observedAt":"2024-05-01T12:00:00Z"}]' })}]`),
        ),
      }),
      fc.record({
        kind: fc.constant('contentType' as const),
        contentType: fc.constantFrom(
          'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'application/json; charset=utf-16',
          'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'application/problem+json', 'multipart/form-data; boundary=x', 'application/json, text/plain',
          'application/jsonx', '*/*', null,
        ),
      }),
    );

    function build(a: Attack): { body: string | Uint8Array; contentType: string | null } {
      const json = (text: string) => ({ body: text, contentType: 'application/json' });
      switch (a.kind) {
        case 'deep': {
          const deep = jsonText.nested(a.depth, a.nesting);
          const text = {
            body: deep,
            updates: body(deep),
            update: body(`[${deep}]`),
            readings: body(`[${update({ readings: deep })}]`),
            value: body(`[${update({ readings: readingWith(deep) })}]`),
            signal: body(`[${update({ readings: readingWith('1', deep) })}]`),
            workspaceId: body(`[${update({ workspaceId: deep })}]`),
          }[a.place];
          return json(text);
        }
        case 'broken':
        case 'keys':
          return json(a.text);
        case 'truncated': {
          const whole = body(`[${update({ readings: readingWith('50') })},${update({ readings: readingWith('{"lat":1,"lon":2}', '"location"') })}]`);
          return json(whole.slice(0, a.cut % whole.length));
        }
        case 'bytes': {
          const marker = '@@BYTES@@';
          const text = {
            workspaceId: body(`[${update({ workspaceId: `"${marker}"` })}]`),
            externalDeviceId: body(`[${update({ externalDeviceId: `"dev-0${marker}"` })}]`),
            signal: body(`[${update({ readings: readingWith('50', `"soc${marker}"`) })}]`),
            key: body(`[${update({ readings: readingWith('50') }).replace('{', `{"k${marker}":1,`)}]`),
          }[a.place];
          const [head, tail] = text.split(marker) as [string, string];
          const encoder = new TextEncoder();
          return { body: new Uint8Array([...encoder.encode(head), ...a.bytes, ...encoder.encode(tail)]), contentType: 'application/json' };
        }
        case 'contentType':
          return { body: new TextEncoder().encode(body(`[${update({ readings: readingWith('50') })}]`)), contentType: a.contentType };
      }
    }

    await fc.assert(
      fc.asyncProperty(attack, async (a) => {
        const { body: payload, contentType } = build(a);
        const { answer } = await exchange(payload, contentType);
        if (a.kind === 'broken' || a.kind === 'truncated') expect(answer.status, 'broken JSON is a 400 or a 200, nothing else').toBeOneOf([200, 400]);
        if (a.kind === 'deep' && answer.status === 200) {
          // The offending update is kept, cut to a storable depth.
          expect(answer.body.results.some((r: any) => r.status === 'rejected' || r.readings.some((x: any) => x.status === 'rejected'))).toBe(true);
        }
      }),
      runs(100, [
        [{ kind: 'deep', depth: 1_000_000, nesting: 'array', place: 'value' }],
        [{ kind: 'deep', depth: 400_000, nesting: 'object', place: 'body' }],
        [{ kind: 'keys', text: `{"updates":"none","updates":[${update({ readings: readingWith('50') })}]}` }],
      ]),
    );
  });

  it('reads timestamps at the edges in every timestamp field as the time rules say', { timeout: 120_000 }, async () => {
    type Edge = { field: 'receivedAt' | 'observedAt'; text: string };
    const edges = [...edgeTimestamps.valid, ...edgeTimestamps.outOfRange, ...edgeTimestamps.invalid];
    const edge: fc.Arbitrary<Edge> = fc.record({
      field: fc.constantFrom<'receivedAt' | 'observedAt'>('receivedAt', 'observedAt'),
      text: fc.oneof(
        fc.constantFrom(...edges),
        randomTimestamp,
        fc.integer({ min: Date.UTC(100, 0, 1) - dayMs, max: Date.UTC(9999, 11, 31) + dayMs }).chain(spelledInstant),
        readingInstant.chain(spelledInstant),
      ),
    });
    await fc.assert(
      fc.asyncProperty(edge, async ({ field: which, text }) => {
        const id = identities[0]!;
        const observedAt = which === 'observedAt' ? text : new Date(suiteStart - 2000).toISOString();
        const receivedAt = which === 'receivedAt' ? text : new Date().toISOString();
        const sent = { workspaceId: id.workspaceId, provider: id.provider, connectionId: id.connectionId, externalDeviceId: id.externalDeviceId, source: 'stream', receivedAt, readings: [{ signal: 'soc_pct', value: 50, observedAt }] };
        const { answer, from, to } = await exchange(JSON.stringify({ updates: [sent] }));
        expect(answer.status).toBe(200);
        const [result] = answer.body.results;
        // A time is an RFC 3339 instant between the years 0100 and 9999, or the update is malformed.
        if ((edgeTimestamps.valid as readonly string[]).includes(text)) expect(parseTimestamp(text), text).toBeDefined();
        if (([...edgeTimestamps.outOfRange, ...edgeTimestamps.invalid] as readonly string[]).includes(text)) expect(parseTimestamp(text), text).toBeUndefined();
        if (parseTimestamp(text) === undefined) expect(result, text).toMatchObject({ status: 'rejected', reason: 'malformed' });
        else {
          expect(result.status, text).toBe('processed');
          expectReadingOutcomes(result, sent, from, to);
        }
      }),
      runs(2 * edges.length + 100, [
        ...edges.map((text) => [{ field: 'receivedAt', text }]),
        ...edges.map((text) => [{ field: 'observedAt', text }]),
      ]),
    );
  });

  it('refuses bodies beyond the limits with a problem and stores huge offending updates cut to size', { timeout: 120_000 }, async () => {
    const limit = ingestLimits.bodyBytes;
    type Big =
      | { kind: 'pad'; bytes: number; filler: string }
      | { kind: 'externalDeviceId' | 'value' | 'signal'; bytes: number; filler: string }
      | { kind: 'updates'; count: number }
      | { kind: 'readings'; count: number };
    const fillers = fc.constantFrom('x', 'é', '😀', '\\u0000', '\\ud800', '\\u202e');
    const big: fc.Arbitrary<Big> = fc.oneof(
      fc.record({ kind: fc.constant('pad' as const), bytes: fc.constantFrom(limit + 1, 10 * 1024 * 1024), filler: fillers }),
      fc.record({
        kind: fc.constantFrom<'externalDeviceId' | 'value' | 'signal'>('externalDeviceId', 'value', 'signal'),
        bytes: fc.constantFrom(limit - 4096, limit + 1, 10 * 1024 * 1024),
        filler: fillers,
      }),
      fc.record({ kind: fc.constant('updates' as const), count: fc.constant(ingestLimits.updatesPerBatch + 1) }),
      fc.record({ kind: fc.constant('readings' as const), count: fc.constant(ingestLimits.readingsPerBatch + 1) }),
    );
    const id = () => identities[0]!;
    const readingText = (value: JsonText, signal: JsonText = '"soc_pct"') => `{"signal":${signal},"value":${value},"observedAt":${string(new Date(suiteStart - 1000).toISOString())}}`;
    const updateText = (externalDeviceId: JsonText, readings: string[]) =>
      jsonText.object([
        ['workspaceId', string(id().workspaceId)],
        ['provider', string(id().provider)],
        ['connectionId', string(id().connectionId)],
        ['externalDeviceId', externalDeviceId],
        ['source', '"stream"'],
        ['receivedAt', string(new Date().toISOString())],
        ['readings', jsonText.array(readings)],
      ]);

    function build(b: Big): string {
      if (b.kind === 'updates') return `{"updates":[${Array.from({ length: b.count }, () => updateText('"dev-0"', [])).join(',')}]}`;
      if (b.kind === 'readings') {
        // 101 updates of at most 1000 readings each: every update is within its own limit, the batch is not.
        const perUpdate = Math.ceil(b.count / 101);
        const updates = Array.from({ length: 101 }, (_, i) => updateText('"dev-0"', Array.from({ length: Math.min(perUpdate, b.count - i * perUpdate) }, () => '{"signal":"x","value":0,"observedAt":"x"}')));
        return `{"updates":[${updates.join(',')}]}`;
      }
      // The filler as written in the JSON text (an escape is 6 bytes, an emoji 4), repeated to about `bytes`.
      const fill = (bytes: number) => `"${b.filler.repeat(Math.floor(bytes / Buffer.byteLength(b.filler)))}"`;
      if (b.kind === 'pad') return `{"updates":[],"pad":${fill(b.bytes)}}`;
      if (b.kind === 'externalDeviceId') return `{"updates":[${updateText(fill(b.bytes - 400), [readingText('50')])}]}`;
      if (b.kind === 'value') return `{"updates":[${updateText('"dev-0"', [readingText('50'), readingText(fill(b.bytes - 500))])}]}`;
      return `{"updates":[${updateText('"dev-0"', [readingText('50', fill(b.bytes - 500))])}]}`;
    }

    await fc.assert(
      fc.asyncProperty(big, async (b) => {
        const text = build(b);
        const { answer } = await exchange(text);
        const bytes = Buffer.byteLength(text);
        if (bytes > limit) expect(answer).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
        else if (b.kind === 'updates' || b.kind === 'readings') expect(answer).toMatchObject({ status: 413, body: { code: 'batch_too_large' } });
        else expect(answer.status).toBe(200);
      }),
      runs(12, [
        [{ kind: 'pad', bytes: 10 * 1024 * 1024, filler: 'x' }],
        [{ kind: 'externalDeviceId', bytes: limit - 4096, filler: 'x' }],
        [{ kind: 'value', bytes: limit - 4096, filler: '\\ud800' }],
        [{ kind: 'signal', bytes: limit - 4096, filler: '😀' }],
        [{ kind: 'updates', count: ingestLimits.updatesPerBatch + 1 }],
        [{ kind: 'readings', count: ingestLimits.readingsPerBatch + 1 }],
      ]),
    );

    // The huge offending updates were kept, but cut to a size an operator's query can carry.
    const { rows } = await core.db.query<{ n: number; longest: number }>('SELECT count(*)::int AS n, max(length(update_body::text))::int AS longest FROM ingest_rejections');
    expect(rows[0]!.n).toBeGreaterThan(0);
    expect(rows[0]!.longest).toBeLessThan(100_000);
  });

  it('leaves every stored value and snapshot consistent after all runs', async () => {
    await expectStoreInvariants(null);
    const { rows } = await core.db.query<{ n: number }>('SELECT count(*)::int AS n FROM signal_history');
    // The runs reached history at all: the invariants were checked on real rows.
    expect(rows[0]!.n).toBeGreaterThan(50);
  });
});
