/**
 * Real websocket connections (the `ws` client) to the Traccar simulator on loopback, driven by the adapter's
 * plan, prepare and decode: refusal, the opening frame, ground truth over a bounded run, keepalives, and the
 * socket faults the stream runtime must survive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { servedKey } from '../../../src/sim/ground-truth.ts';
import { startTraccarSimulator, type RunningTraccarSimulator, type TraccarSimulatorOptions } from '../../../src/sim/traccar/simulator.ts';
import { traccarStreamAdapter } from '../../../src/providers/traccar/adapter.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { connectStream, context, decodedReadings, sleep, waitUntil, type StreamTestClient } from '../../support/stream-client.ts';
import { expectSameValue } from '../same-value.ts';

let sim: RunningTraccarSimulator | undefined;
const clients: StreamTestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await sim?.stop();
  sim = undefined;
});

async function start(options: Partial<TraccarSimulatorOptions> & { vehicles?: number; seed?: number } = {}) {
  const t0 = Date.now();
  const fleet = new FleetModel({ seed: options.seed ?? 42, vehicles: options.vehicles ?? 6, startMs: t0, timeScale: 30 });
  sim = await startTraccarSimulator({
    accounts: [{ credentials: { token: 'tok-1' }, fleet }],
    tickMs: 50,
    keepaliveMs: 200,
    // A clock 20 times faster than the wall: about one fleet step per 50 ms tick, and observed times stay within
    // ingest's clock-skew allowance for the few seconds a test runs.
    now: () => t0 + (Date.now() - t0) * 20,
    ...options,
  });
  return { sim, fleet };
}

async function connect(running: RunningTraccarSimulator, token = 'tok-1') {
  const ctx = context(running.url, { token });
  const client = await connectStream(traccarStreamAdapter, ctx, traccarStreamAdapter.plan(ctx)[0]!);
  clients.push(client);
  return client;
}

const readingFrames = (client: StreamTestClient) => client.frames.filter((f) => f.decoded.kind === 'readings' && f.decoded.devices.length > 0);

describe('traccar simulator over a real websocket', () => {
  it('refuses the upgrade without a valid token, and the device list too', async () => {
    const { sim } = await start();
    await expect(connect(sim, 'wrong')).rejects.toThrow(/401/);
    const noToken = new WebSocket(`${sim.url.replace('http', 'ws')}/api/socket`);
    await expect(new Promise((_, reject) => noToken.once('error', reject))).rejects.toThrow(/401/);
    const elsewhere = new WebSocket(`${sim.url.replace('http', 'ws')}/api/other?token=tok-1`);
    await expect(new Promise((_, reject) => elsewhere.once('error', reject))).rejects.toThrow(/404/);
    expect((await fetch(`${sim.url}/api/devices`)).status).toBe(401);
    expect((await fetch(`${sim.url}/api/devices?token=tok-1`)).status).toBe(200);
    expect(sim.openSockets).toBe(0);
  });

  it('opens with the latest position of every device, then pushes positions on ticks', async () => {
    const { sim, fleet } = await start();
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length > 0);
    const first = client.frames[0]!.decoded;
    expect(first.kind).toBe('readings');
    if (first.kind !== 'readings') return;
    expect(first.devices.map((d) => d.externalDeviceId).sort()).toEqual(fleet.vehicles.map((v) => v.traccarUniqueId).sort());
    expectValidReadings(first.devices);
    await client.waitFor('positions after the opening frame', () => readingFrames(client).length >= 3);
  });

  it('decodes exactly what the simulator says it served, over a bounded run', async () => {
    const { sim } = await start();
    const client = await connect(sim);
    await client.waitFor('a few position frames', () => readingFrames(client).length >= 8, 5000);
    await client.close();

    const decoded = decodedReadings(client.frames);
    const truth = sim.groundTruth.unique('tok-1');
    expect(truth.size).toBeGreaterThan(50);
    expect([...decoded.keys()].sort()).toEqual([...truth.keys()].sort());
    for (const [key, served] of truth) {
      for (const { value } of decoded.get(key)!) expectSameValue(value, served.value, key);
    }
    for (const frame of client.frames) if (frame.decoded.kind === 'readings') expectValidReadings(frame.decoded.devices);
    expect(client.frames.filter((f) => f.decoded.kind === 'bad')).toEqual([]);
    // Every served reading is keyed like ground truth expects.
    expect([...truth.values()].every((r) => truth.has(servedKey(r)))).toBe(true);
  });

  it('sends devices frames on status changes and ignition events, which carry no readings', async () => {
    // A hand-driven clock: the run is the same every time (the fleet is seeded).
    let clock = Date.now();
    const { sim, fleet } = await start({ now: () => clock, tickMs: 600_000, keepaliveMs: 600_000, seed: 7, vehicles: 8 });
    const client = await connect(sim);
    const kinds = () => client.frames.map((f) => Object.keys(JSON.parse(f.text) as object)[0]);
    const driving = fleet.vehicles.findIndex((_, i) => fleet.state(i).phase === 'driving');
    expect(driving).toBeGreaterThanOrEqual(0);
    fleet.sleep(driving);
    clock += 1000;
    sim.tick();
    await client.waitFor('a devices frame', () => kinds().includes('devices'));
    const devicesFrame = client.frames.find((f) => f.text.startsWith('{"devices"'))!;
    expect(JSON.parse(devicesFrame.text)).toMatchObject({ devices: [{ uniqueId: fleet.vehicles[driving]!.traccarUniqueId, status: 'offline' }] });
    expect(devicesFrame.decoded).toEqual({ kind: 'readings', devices: [] });

    for (let i = 0; i < 400 && !kinds().includes('events'); i += 1) {
      clock += 10_000;
      sim.tick();
      await sleep(1);
    }
    await client.waitFor('an ignition event', () => kinds().includes('events'));
    const eventsFrame = client.frames.find((f) => f.text.startsWith('{"events"'))!;
    expect(JSON.parse(eventsFrame.text).events[0].type).toMatch(/^ignition(On|Off)$/);
    expect(eventsFrame.decoded).toEqual({ kind: 'readings', devices: [] });
  });

  it('sends nothing for an asleep vehicle', async () => {
    let clock = Date.now();
    const { sim, fleet } = await start({ now: () => clock, tickMs: 600_000, keepaliveMs: 600_000 });
    fleet.vehicles.forEach((_, i) => fleet.sleep(i));
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length === 1);
    for (let i = 0; i < 20; i += 1) {
      clock += 5000;
      sim.tick();
    }
    await sleep(100);
    // One devices frame (every vehicle went offline), no positions.
    expect(client.frames.slice(1).map((f) => Object.keys(JSON.parse(f.text) as object))).toEqual([['devices']]);
  });

  it('sends the {} keepalive at the configured interval', async () => {
    const { sim } = await start({ tickMs: 600_000, keepaliveMs: 200 });
    const client = await connect(sim);
    await client.waitFor('four keepalives', () => client.frames.filter((f) => f.decoded.kind === 'keepalive').length >= 4, 3000);
    const times = client.frames.filter((f) => f.decoded.kind === 'keepalive').map((f) => f.atMs);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Timers drift under load; the bounds still tell 200 ms from Traccar's default 55 s or a runaway timer.
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(120);
      expect(gap).toBeLessThan(600);
    }
    const mean = gaps.reduce((sum, gap) => sum + gap, 0) / gaps.length;
    expect(mean).toBeGreaterThan(170);
    expect(mean).toBeLessThan(320);
  });

  it('drops every socket: the client sees an abnormal close', async () => {
    const { sim } = await start();
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length > 0);
    sim.dropSockets();
    const code = await Promise.race([client.closed, sleep(2000).then(() => 'still open')]);
    expect(code).toBe(1006);
    await waitUntil('the simulator to forget the socket', () => sim.openSockets === 0);
  });

  it('goes half-open: the socket stays open but nothing more arrives, not even a pong', async () => {
    const { sim } = await start();
    const client = await connect(sim);
    await client.waitFor('frames flowing', () => readingFrames(client).length >= 2 && client.frames.some((f) => f.decoded.kind === 'keepalive'));
    sim.goHalfOpen();
    await sleep(100);
    const count = client.frames.length;
    const served = sim.groundTruth.all().length;
    let ponged = false;
    client.ws.on('pong', () => {
      ponged = true;
    });
    client.ws.ping();
    await sleep(600);
    expect(client.frames.length).toBe(count);
    expect(sim.groundTruth.all().length, 'nothing recorded as served on a silent socket').toBe(served);
    expect(ponged).toBe(false);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    expect(sim.openSockets).toBe(1);
    // A new connection works again, as after the runtime's reconnect.
    const fresh = await connect(sim);
    await fresh.waitFor('frames on the new socket', () => fresh.frames.length >= 2);
  });

  it('delays every frame in slow mode', async () => {
    const { sim } = await start({ tickMs: 600_000, keepaliveMs: 600_000 });
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length === 1);
    sim.setSlowMode(300);
    const sentAt = Date.now();
    sim.sendMalformedFrame();
    await client.waitFor('the delayed frame', () => client.frames.length === 2);
    expect(client.frames[1]!.atMs - sentAt).toBeGreaterThanOrEqual(250);
    sim.setSlowMode(0);
  });

  it('a malformed frame decodes as bad, and frames after it still decode', async () => {
    const { sim } = await start();
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length > 0);
    sim.sendMalformedFrame();
    await client.waitFor('the bad frame', () => client.frames.some((f) => f.decoded.kind === 'bad'));
    const badAt = client.frames.findIndex((f) => f.decoded.kind === 'bad');
    await client.waitFor('readings after it', () => client.frames.slice(badAt + 1).some((f) => f.decoded.kind === 'readings' && f.decoded.devices.length > 0));
    expect(sim.groundTruth.all().length).toBeGreaterThan(0);
  });
});
