/**
 * Real websocket connections (the `ws` client) to the Traccar simulator on loopback, driven by the adapter's
 * plan, prepare and decode: refusal as Traccar's Jetty answers it, the opening frame and one entity per frame
 * after it, ground truth over a bounded run (with default options and with the demo's attribute options), the
 * phone battery, keepalives, and the socket faults the stream runtime must survive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { servedKey } from '../../../src/sim/ground-truth.ts';
import { startTraccarSimulator, type RunningTraccarSimulator, type TraccarSimulatorOptions } from '../../../src/sim/traccar/simulator.ts';
import { phoneBattery, simulatedEvAttributes } from '../../../src/sim/traccar/simulator-frames.ts';
import { traccarOptionsSchema } from '../../../src/providers/traccar/options.ts';
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

async function connect(running: RunningTraccarSimulator, token = 'tok-1', options: Record<string, unknown> = {}) {
  const ctx = { ...context(running.url, { token }), options: traccarOptionsSchema.parse(options) };
  const client = await connectStream(traccarStreamAdapter, ctx, traccarStreamAdapter.plan(ctx)[0]!);
  clients.push(client);
  return client;
}

const readingFrames = (client: StreamTestClient) => client.frames.filter((f) => f.decoded.kind === 'readings' && f.decoded.devices.length > 0);

describe('traccar simulator over a real websocket', () => {
  it('refuses an upgrade as Jetty does: 500 for a refused token, 503 for none; the device list says 401', async () => {
    const { sim } = await start();
    await expect(connect(sim, 'wrong')).rejects.toThrow(/Unexpected server response: 500/);
    const refusal = (path: string) =>
      new Promise<never>((_, reject) => new WebSocket(`${sim.url.replace('http', 'ws')}${path}`).once('error', reject));
    await expect(refusal('/api/socket')).rejects.toThrow(/Unexpected server response: 503/);
    await expect(refusal('/api/other?token=tok-1')).rejects.toThrow(/404/);
    expect((await fetch(`${sim.url}/api/devices`)).status).toBe(401);
    expect((await fetch(`${sim.url}/api/devices`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${sim.url}/api/devices?token=tok-1`)).status).toBe(200);
    expect(sim.openSockets).toBe(0);
  });

  it('refuses a bad token with 503 when told to, and answers 503 to everything while unavailable', async () => {
    const { sim } = await start({ refusedTokenStatus: 503 });
    await expect(connect(sim, 'wrong')).rejects.toThrow(/Unexpected server response: 503/);
    sim.setUnavailable(true);
    await expect(connect(sim)).rejects.toThrow(/Unexpected server response: 503/);
    expect((await fetch(`${sim.url}/api/devices?token=tok-1`)).status).toBe(503);
    sim.setUnavailable(false);
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length > 0);
  });

  it('sends every device in the opening frame, then one entity per frame, as AsyncSocket does', async () => {
    const { sim, fleet } = await start({ vehicles: 8 });
    const client = await connect(sim);
    await client.waitFor('frames after the opening one', () => client.frames.filter((f) => f.text !== '{}').length >= 30, 5000);
    const entities = client.frames.map((f) => JSON.parse(f.text) as Record<string, unknown[]>);
    expect(Object.keys(entities[0]!)).toEqual(['positions']);
    expect(entities[0]!.positions).toHaveLength(fleet.vehicles.length);
    for (const frame of entities.slice(1)) {
      const keys = Object.keys(frame);
      if (keys.length === 0) continue;
      expect(keys).toHaveLength(1);
      expect(frame[keys[0]!], JSON.stringify(frame).slice(0, 120)).toHaveLength(1);
    }
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
    // Without attribute options no reading is the traction battery; the phone's battery is the tracker's.
    const signals = new Set([...truth.values()].map((r) => r.signal));
    expect(signals).toContain('tracker_battery_pct');
    expect(signals).not.toContain('soc_pct');
    expect(signals).not.toContain('charging_state');
  });

  it("decodes the vehicle's state of charge and charging with the demo's attribute options, exactly as served", async () => {
    const { sim } = await start({ evAttributesMapped: true });
    const client = await connect(sim, 'tok-1', simulatedEvAttributes);
    await client.waitFor('a few position frames', () => readingFrames(client).length >= 8, 5000);
    await client.close();
    const decoded = decodedReadings(client.frames);
    const truth = sim.groundTruth.unique('tok-1');
    expect([...decoded.keys()].sort()).toEqual([...truth.keys()].sort());
    for (const [key, served] of truth) {
      for (const { value } of decoded.get(key)!) expectSameValue(value, served.value, key);
    }
    const socs = [...truth.values()].filter((r) => r.signal === 'soc_pct');
    const phones = [...truth.values()].filter((r) => r.signal === 'tracker_battery_pct');
    expect(socs.length).toBeGreaterThan(0);
    expect(phones.length).toBe(socs.length);
    expect(new Set([...truth.values()].filter((r) => r.signal === 'charging_state').map((r) => r.value)).size).toBeGreaterThan(0);
  });

  it("puts a phone's battery in batteryLevel: whole percent, between 25 and 95, draining slowly, charging only while it climbs", async () => {
    const hour = 3_600_000;
    for (const deviceId of [1, 7, 42, 1003]) {
      let previous = phoneBattery(deviceId, 0);
      let drops = 0;
      for (let t = 60_000; t <= 48 * hour; t += 60_000) {
        const now = phoneBattery(deviceId, t);
        expect(Number.isInteger(now.pct)).toBe(true);
        expect(now.pct).toBeGreaterThanOrEqual(25);
        expect(now.pct).toBeLessThanOrEqual(95);
        // A minute moves a draining phone by at most a percent; charging it by at most one point more.
        expect(Math.abs(now.pct - previous.pct)).toBeLessThanOrEqual(now.charging ? 2 : 1);
        if (now.pct < previous.pct) {
          drops += 1;
          expect(now.charging).toBe(false);
        }
        if (now.pct > previous.pct) expect(now.charging).toBe(true);
        previous = now;
      }
      // 70 points over 20 hours, twice in 48 hours.
      expect(drops).toBeGreaterThan(100);
    }
    // Phones are at different points of their cycle.
    expect(new Set([1, 2, 3, 4, 5].map((id) => phoneBattery(id, 0).pct)).size).toBeGreaterThan(2);
    const { sim } = await start();
    const client = await connect(sim);
    await client.waitFor('the opening frame', () => client.frames.length > 0);
    const opening = JSON.parse(client.frames[0]!.text) as { positions: { deviceId: number; fixTime: string; attributes: Record<string, unknown> }[] };
    for (const position of opening.positions) {
      expect(position.attributes.batteryLevel).toBe(phoneBattery(position.deviceId, Date.parse(position.fixTime)).pct);
      expect(typeof position.attributes.evSoc).toBe('number');
    }
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
    // One devices frame per vehicle that went offline, no positions.
    const after = client.frames.slice(1).map((f) => JSON.parse(f.text) as { devices?: unknown[] });
    expect(after.length).toBeGreaterThan(0);
    expect(after.length).toBeLessThanOrEqual(fleet.vehicles.length);
    for (const frame of after) expect(Object.keys(frame)).toEqual(['devices']);
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
