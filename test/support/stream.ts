/**
 * The stream runtime against the Traccar and Tessie simulators and a test core: fast timings, a
 * simulated clock that starts in the past and runs faster than the wall (so the fleets move, yet no reading is
 * ever ahead of the server clock during a test), and workspaces wired to the simulators.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Database } from '../../src/core/db/database.ts';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createVehicle } from '../../src/core/registry/vehicles.ts';
import type { Logger } from '../../src/logging.ts';
import { streamAdapters } from '../../src/providers/registry.ts';
import type { VehicleIdentity } from '../../src/sim/fleet-model.ts';
import { defaultStreamTimings, startStreamRuntime, type StreamRuntime, type StreamRuntimeOptions } from '../../src/stream/runtime.ts';
import { startTestCore, type TestCore } from './core.ts';

/**
 * A test core for the enclosing suite, and the list where each test puts what it started (runtimes, simulators):
 * after every test, pass or fail, those stop (newest first) and every stream connection is disabled, so the next
 * test's runtime is the only one and holds only its own connections.
 */
export function useStreamTestCore(): { readonly core: TestCore; readonly stops: (() => Promise<unknown>)[] } {
  let core: TestCore | undefined;
  const stops: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    core = await startTestCore();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    await core?.db.query(`UPDATE provider_connections SET enabled = false WHERE transport = 'stream'`);
  });
  afterAll(async () => {
    await core?.close();
  });
  return {
    get core() {
      if (!core) throw new Error('the stream test core is not started yet (use it inside a test or hook)');
      return core;
    },
    stops,
  };
}

/**
 * Starts 10 minutes in the past and runs 15 times faster than the wall: it reaches now after ~43 s. `freeze` stops
 * it, so the simulators serve nothing new and a test can wait for everything served to arrive before it compares.
 */
export function pastFastClock(speed = 15, behindMs = 10 * 60_000): { now: () => number; startMs: number; freeze(): void } {
  const t0 = Date.now();
  const startMs = t0 - behindMs;
  let frozenAt: number | undefined;
  return {
    now: () => frozenAt ?? startMs + (Date.now() - t0) * speed,
    startMs,
    freeze() {
      frozenAt = startMs + (Date.now() - t0) * speed;
    },
  };
}

export const fastStreamTimings = {
  refreshMs: 200,
  statusMs: 200,
  coalesceMs: 0,
  delivery: { flushMs: 50, maxBatchUpdates: 500, maxBatchReadings: 10_000, bufferReadings: 100_000, retryBaseMs: 50, retryCapMs: 500 },
  sockets: { heartbeatMs: 100, deadAfterMs: 600, handshakeTimeoutMs: 2000, backoffBaseMs: 50, backoffCapMs: 1000 },
};

export function startTestStream(
  options: { coreUrl: string; serviceToken: string; logger: Logger } & Partial<StreamRuntimeOptions>,
): StreamRuntime {
  return startStreamRuntime({ ...defaultStreamTimings, ...fastStreamTimings, adapters: streamAdapters, ...options });
}

/**
 * A stream connection to a simulator, with one vehicle bound per simulated vehicle under the id the provider names
 * it by (Traccar's uniqueId, the VIN for Tessie); `token` is the simulator account's token. Answers the connection's id and
 * the workspace vehicle id of each external id.
 */
export async function connectStreamProvider(
  db: Database,
  secretKey: Buffer,
  workspaceId: string,
  options: { provider: 'traccar' | 'tessie'; baseUrl: string; token: string; vehicles: readonly VehicleIdentity[] },
): Promise<{ connectionId: string; vehicles: Map<string, string> }> {
  const traccar = options.provider === 'traccar';
  const connection = await createConnection(db, secretKey, workspaceId, {
    provider: options.provider,
    transport: 'stream',
    baseUrl: options.baseUrl,
    credentials: traccar ? { token: options.token } : { accessToken: options.token },
  });
  const vehicles = new Map<string, string>();
  for (const vehicle of options.vehicles) {
    const externalId = traccar ? vehicle.traccarUniqueId : vehicle.vin;
    vehicles.set(externalId, await createVehicle(db, workspaceId, { name: `${options.provider} ${vehicle.name}`, devices: [{ connectionId: connection.id, externalId }] }));
  }
  return { connectionId: connection.id, vehicles };
}

/** What the runtime's connections took in so far. */
export function readingsTakenIn(runtime: StreamRuntime): number {
  let n = 0;
  for (const connection of runtime.connections.values()) n += connection.counters.readingsIn;
  return n;
}

/**
 * Once serving has stopped (the clock frozen): waits until the runtime takes in nothing more for 300 ms, so every
 * frame sent has arrived.
 */
export async function takenInEverything(runtime: StreamRuntime): Promise<void> {
  let last = -1;
  await until('the stream runtime to take in everything sent', async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = readingsTakenIn(runtime);
    const settled = now === last;
    last = now;
    return settled || undefined;
  });
}

/** Waits until the runtime has nothing left to deliver (buffered or held by the coalescer). */
export async function drained(runtime: StreamRuntime, timeoutMs = 20_000): Promise<void> {
  await until('the stream runtime to deliver everything', () => runtime.pipeline.totals.buffered === 0 && runtime.coalescer.held === 0, timeoutMs);
}

export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
