/**
 * The Tessie adapter's socket plan, and real websocket connections (the `ws` client) to the
 * simulator on loopback driven by that plan and decode: refusal, the first records, ground truth over a bounded
 * run with resends, and the socket faults the stream runtime must survive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { isProviderError } from '../../../src/providers/provider-error.ts';
import {
  startTessieSimulator,
  type RunningTessieSimulator,
  type TessieSimulatorOptions,
} from '../../../src/sim/tessie/simulator.ts';
import { tessieStreamAdapter } from '../../../src/providers/tessie/adapter.ts';
import { FleetModel } from '../../../src/sim/fleet-model.ts';
import { expectValidReadings } from '../../support/reading-invariants.ts';
import { connectStream, context, decodedReadings, sleep, waitUntil, type StreamTestClient } from '../../support/stream-client.ts';
import { expectSameValue } from '../same-value.ts';

describe('tessie socket plan', () => {
  it('plans one socket per bound VIN with the token as a Bearer header', () => {
    const plans = tessieStreamAdapter.plan(context('https://telemetry.test/stream/', { accessToken: 'tok' }, ['VIN1', ' VIN2 ', 'VIN1', '']));
    expect(plans).toEqual([
      // Each socket is one VIN's: its state is that vehicle's alone (a refused VIN leaves the others connected).
      { key: 'VIN1', device: 'VIN1', url: 'wss://telemetry.test/stream/VIN1', headers: { authorization: 'Bearer tok' } },
      { key: 'VIN2', device: 'VIN2', url: 'wss://telemetry.test/stream/VIN2', headers: { authorization: 'Bearer tok' } },
    ]);
    expect(tessieStreamAdapter.plan(context('http://127.0.0.1:9000', { accessToken: 't' }, ['A/B']))[0]!.url).toBe('ws://127.0.0.1:9000/A%2FB');
    expect(tessieStreamAdapter.plan(context('http://h', { accessToken: 't' }, []))).toEqual([]);
  });

  it('refuses a base URL it cannot use as a permanent error', () => {
    try {
      tessieStreamAdapter.plan(context('mailto:x@y', { accessToken: 't' }, ['V']));
      expect.unreachable();
    } catch (error) {
      expect(isProviderError(error) && error.errorClass).toBe('permanent');
    }
  });
});

let sim: RunningTessieSimulator | undefined;
const clients: StreamTestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await sim?.stop();
  sim = undefined;
});

async function start(options: Partial<TessieSimulatorOptions> & { timeScale?: number } = {}) {
  const t0 = Date.now();
  const fleet = new FleetModel({ seed: 5, vehicles: 6, startMs: t0, timeScale: options.timeScale ?? 30 });
  sim = await startTessieSimulator({
    accounts: [{ credentials: { accessToken: 'acc-1' }, fleet }],
    tickMs: 50,
    // A clock 20 times faster than the wall: about one fleet step per 50 ms tick, and observed times stay within
    // ingest's clock-skew allowance for the few seconds a test runs.
    now: () => t0 + (Date.now() - t0) * 20,
    ...options,
  });
  // Vehicles that report while the test runs: asleep ones stay silent.
  const awake = fleet.vehicles.filter((_, i) => fleet.state(i).phase === 'driving').map((v) => v.vin);
  expect(awake.length).toBeGreaterThanOrEqual(2);
  return { sim, fleet, awake };
}

async function connectAll(running: RunningTessieSimulator, vins: string[], token = 'acc-1') {
  const ctx = context(running.url, { accessToken: token }, vins);
  const opened = await Promise.all(tessieStreamAdapter.plan(ctx).map((plan) => connectStream(tessieStreamAdapter, ctx, plan)));
  clients.push(...opened);
  return opened;
}

const recordFrames = (client: StreamTestClient) => client.frames.filter((f) => f.decoded.kind === 'readings' && f.decoded.devices.length > 0);

describe('tessie simulator over a real websocket', () => {
  it('refuses a wrong token (401) and a VIN outside the account (404); takes the token from the query too', async () => {
    const { sim, awake } = await start();
    await expect(connectAll(sim, [awake[0]!], 'wrong')).rejects.toThrow(/401/);
    await expect(connectAll(sim, ['NOTINTHISFLEET1'])).rejects.toThrow(/404/);
    const noToken = new WebSocket(`${sim.url.replace('http', 'ws')}/${awake[0]}`);
    await expect(new Promise((_, reject) => noToken.once('error', reject))).rejects.toThrow(/401/);
    const byQuery = new WebSocket(`${sim.url.replace('http', 'ws')}/${awake[0]}?access_token=acc-1`);
    await new Promise<void>((resolve, reject) => {
      byQuery.once('open', () => resolve());
      byQuery.once('error', reject);
    });
    byQuery.terminate();
  });

  it('sends records of the socket’s own vehicle once it reports', async () => {
    const { sim, awake } = await start();
    const [a, b] = await connectAll(sim, awake.slice(0, 2));
    await waitUntil('records on both sockets', () => recordFrames(a!).length >= 2 && recordFrames(b!).length >= 2);
    for (const [client, vin] of [[a!, awake[0]!], [b!, awake[1]!]] as const) {
      for (const frame of recordFrames(client)) {
        if (frame.decoded.kind !== 'readings') continue;
        expect(frame.decoded.devices.map((d) => d.externalDeviceId)).toEqual([vin]);
        expectValidReadings(frame.decoded.devices);
      }
    }
  });

  it('decodes exactly what the simulator says it served, resends included, over a bounded run', async () => {
    // A fleet whose duty cycle runs 300 times faster: trips end, vehicles plug in and charge within the run, so
    // every mapped field goes over the wire.
    const { sim, fleet } = await start({ resendRate: 0.4, timeScale: 300 });
    const vins = fleet.vehicles.map((v) => v.vin);
    const opened = await connectAll(sim, vins);
    const everySignal = ['location', 'heading_deg', 'speed_kph', 'soc_pct', 'odometer_km', 'range_km', 'battery_temp_c', 'charging_state', 'plugged_in', 'ignition'];
    const signalsSeen = () => new Set([...decodedReadings(opened.flatMap((c) => c.frames)).keys()].map((key) => key.split('|')[1]));
    const resendSeen = () => opened.some((c) => c.frames.some((f) => f.decoded.kind === 'readings' && f.decoded.resend));
    await waitUntil('every signal and a resend', () => resendSeen() && everySignal.every((s) => signalsSeen().has(s)), 10_000);
    await Promise.all(opened.map((client) => client.close()));

    const frames = opened.flatMap((client) => client.frames);
    expect(frames.filter((f) => f.decoded.kind === 'bad')).toEqual([]);
    for (const frame of frames) if (frame.decoded.kind === 'readings') expectValidReadings(frame.decoded.devices);
    const decoded = decodedReadings(frames);
    const truth = sim.groundTruth.unique('acc-1');
    expect(truth.size).toBeGreaterThan(30);
    expect([...decoded.keys()].sort()).toEqual([...truth.keys()].sort());
    for (const [key, served] of truth) for (const { value } of decoded.get(key)!) expectSameValue(value, served.value, key);

    // A resend repeats readings already delivered, so it adds nothing to the unique set.
    const resent = frames.filter((f) => f.decoded.kind === 'readings' && f.decoded.resend);
    expect(resent.length).toBeGreaterThan(0);
    const firstTime = decodedReadings(frames.filter((f) => !(f.decoded.kind === 'readings' && f.decoded.resend)));
    for (const key of decodedReadings(resent).keys()) expect(firstTime.has(key), key).toBe(true);
    expect(sim.groundTruth.all('acc-1').length).toBeGreaterThan(truth.size);
  });

  it('drops every socket: the clients see an abnormal close', async () => {
    const { sim, awake } = await start();
    const opened = await connectAll(sim, awake.slice(0, 2));
    sim.dropSockets();
    const codes = await Promise.race([Promise.all(opened.map((c) => c.closed)), sleep(2000).then(() => 'still open')]);
    expect(codes).toEqual([1006, 1006]);
    await waitUntil('the simulator to forget the sockets', () => sim.openSockets === 0);
  });

  it('goes half-open: the socket stays open but nothing more arrives, not even a pong', async () => {
    const { sim, awake } = await start();
    const [client] = await connectAll(sim, [awake[0]!]);
    await waitUntil('records flowing', () => recordFrames(client!).length >= 2);
    sim.goHalfOpen();
    await sleep(100);
    const count = client!.frames.length;
    const served = sim.groundTruth.all().length;
    let ponged = false;
    client!.ws.on('pong', () => {
      ponged = true;
    });
    client!.ws.ping();
    await sleep(800);
    expect(client!.frames.length).toBe(count);
    expect(sim.groundTruth.all().length, 'nothing recorded as served on a silent socket').toBe(served);
    expect(ponged).toBe(false);
    expect(client!.ws.readyState).toBe(WebSocket.OPEN);
    const [fresh] = await connectAll(sim, [awake[0]!]);
    await waitUntil('records on a new socket', () => recordFrames(fresh!).length >= 1);
  });

  it('delays every frame in slow mode, and a malformed frame decodes as bad without stopping the rest', async () => {
    const { sim, awake } = await start({ tickMs: 600_000 });
    const [client] = await connectAll(sim, [awake[0]!]);
    sim.setSlowMode(300);
    const sentAt = Date.now();
    sim.sendMalformedFrame();
    await waitUntil('the delayed bad frame', () => client!.frames.length === 1);
    expect(client!.frames[0]!.decoded.kind).toBe('bad');
    expect(client!.frames[0]!.atMs - sentAt).toBeGreaterThanOrEqual(250);
    sim.setSlowMode(0);
    for (let i = 0; i < 200 && recordFrames(client!).length === 0; i += 1) {
      sim.tick();
      await sleep(20);
    }
    expect(recordFrames(client!).length).toBeGreaterThan(0);
  });

  it.each([
    ['rate_limit', /429/],
    ['server_error', /503/],
    ['auth', /401/],
  ] as const)('a %s fault refuses the upgrade once, and the next connection works', async (fault, status) => {
    const { sim, awake } = await start();
    sim.faults.queue(fault);
    await expect(connectAll(sim, [awake[0]!])).rejects.toThrow(status);
    await connectAll(sim, [awake[0]!]);
  });

  it('a timeout fault leaves the handshake unanswered', async () => {
    const { sim, awake } = await start();
    sim.faults.queue('timeout');
    const ws = new WebSocket(`${sim.url.replace('http', 'ws')}/${awake[0]}`, { headers: { authorization: 'Bearer acc-1' }, handshakeTimeout: 300 });
    await expect(new Promise((_, reject) => ws.once('error', reject))).rejects.toThrow(/timed out|timeout/i);
  });
});
