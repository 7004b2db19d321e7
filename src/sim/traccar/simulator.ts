/**
 * A Traccar server as a stream client sees it (reference/provider-wire-formats.md §3a; Traccar api/AsyncSocket,
 * AsyncSocketServlet, DeviceResource): GET /api/devices, and a websocket at /api/socket?token= that opens with
 * the latest position of every device and then pushes positions, device status changes, ignition events and the
 * `{}` keepalive. Each account is one Traccar user with its own fleet; a tick advances every fleet and pushes
 * what it produced. Ground truth records every reading that left on an open socket.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { WebSocketServer } from 'ws';
import { FaultInjector } from '../faults.ts';
import type { FleetModel, Sample } from '../fleet-model.ts';
import { GroundTruth } from '../ground-truth.ts';
import type { SimulatedAccount, SimulatorListenOptions } from '../simulator.ts';
import {
  deviceStatus,
  ignitionEvent,
  servedReadingsOf,
  simulatedDevice,
  simulatedPosition,
} from './simulator-frames.ts';
import { answerRest } from './simulator-rest.ts';
import { refuseUpgrade, runStreamSimulator, SimulatorSockets, type RunningStreamSimulator } from '../stream-sockets.ts';
import type { TraccarDevice, TraccarDeviceStatus, TraccarEvent, TraccarPosition } from '../../providers/traccar/wire.ts';

export interface TraccarSimulatorOptions extends SimulatorListenOptions {
  accounts: SimulatedAccount<{ token: string }>[];
  /** Faults for GET /api/devices. */
  faults?: FaultInjector;
  /** Interval of the `{}` keepalive on every socket. Default 55 s, as Traccar's own. */
  keepaliveMs?: number;
  /** How often fleets advance and new data is pushed. Default 1 s. */
  tickMs?: number;
}

export type RunningTraccarSimulator = RunningStreamSimulator;

/** One simulated Traccar user: its fleet, its place in the fleet's sample log, and what it last reported. */
interface Account {
  token: string;
  fleet: FleetModel;
  /** The next fleet sample this account has not turned into frames yet. */
  cursor: number;
  /** deviceId -> uniqueId of the fleet's vehicles. */
  uniqueIds: Map<number, string>;
  /** The newest position of each vehicle (by index): what a socket gets when it opens. */
  latest: Map<number, TraccarPosition>;
  status: Map<number, TraccarDeviceStatus>;
  nextPositionId: number;
  nextEventId: number;
}

export async function startTraccarSimulator(options: TraccarSimulatorOptions): Promise<RunningTraccarSimulator> {
  const now = options.now ?? Date.now;
  const faults = options.faults ?? new FaultInjector();
  const groundTruth = new GroundTruth();
  const served = { requests: 0 };
  const sockets = new SimulatorSockets<Account>(() => {
    served.requests += 1;
  }, '{"positions":[{"deviceId":');
  const accounts = options.accounts.map((account) => openAccount(account.credentials.token, account.fleet, now()));
  const byToken = new Map(accounts.map((account) => [account.token, account]));

  // Called once per socket a positions frame actually left on.
  const recordPositions = (positions: TraccarPosition[]) => (account: Account) => {
    for (const position of positions) {
      const uniqueId = account.uniqueIds.get(position.deviceId)!;
      for (const reading of servedReadingsOf(position, uniqueId, account.token, Date.parse(position.fixTime))) groundTruth.record(reading);
    }
  };

  const server = createServer((request, response) => {
    served.requests += 1;
    answerRest(request, response, faults, (token) => {
      const account = byToken.get(token);
      return account && devicesOf(account);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    served.requests += 1;
    const url = new URL(request.url ?? '/', 'http://simulator');
    if (url.pathname !== '/api/socket') return refuseUpgrade(socket, 404, 'not found');
    const account = byToken.get(url.searchParams.get('token') ?? '');
    if (!account) return refuseUpgrade(socket, 401, 'a valid token is required');
    wss.handleUpgrade(request, socket, head, (ws) => {
      sockets.add(ws, account);
      const positions = [...account.latest.values()];
      sockets.sendTo(ws, JSON.stringify({ positions }), recordPositions(positions));
    });
  });

  const tickAccount = (account: Account, nowMs: number) => {
    const { fleet } = account;
    fleet.advanceTo(nowMs);
    const samples = fleet.samplesFrom(account.cursor);
    account.cursor = fleet.endSeq;

    const devices: TraccarDevice[] = [];
    fleet.vehicles.forEach((identity, index) => {
      const status = deviceStatus(fleet.state(index));
      if (status === account.status.get(index)) return;
      account.status.set(index, status);
      devices.push(simulatedDevice(identity, status, nowMs, account.latest.get(index)?.id ?? 0));
    });

    const positions: TraccarPosition[] = [];
    for (const [index, fixTimeMs] of newestPerVehicle(samples)) {
      const position = simulatedPosition(fleet.vehicles[index]!, fleet.state(index), {
        positionId: account.nextPositionId++,
        fixTimeMs,
        serverTimeMs: nowMs,
      });
      account.latest.set(index, position);
      positions.push(position);
    }

    const events: TraccarEvent[] = [];
    for (const sample of samples) {
      if (sample.signal !== 'ignition') continue;
      events.push(
        ignitionEvent(fleet.vehicles[sample.vehicle]!, sample.value, {
          eventId: account.nextEventId++,
          eventTimeMs: sample.observedAtMs,
          positionId: account.latest.get(sample.vehicle)?.id ?? 0,
        }),
      );
    }

    const mine = (tag: Account) => tag === account;
    // Devices before positions: a client learns a device's uniqueId before the first position that needs it.
    if (devices.length > 0) sockets.send(mine, JSON.stringify({ devices }));
    if (positions.length > 0) sockets.send(mine, JSON.stringify({ positions }), recordPositions(positions));
    if (events.length > 0) sockets.send(mine, JSON.stringify({ events }));
  };

  const keepaliveTimer = setInterval(() => sockets.send(() => true, '{}'), options.keepaliveMs ?? 55_000);
  return runStreamSimulator({
    provider: 'traccar',
    server,
    wss,
    sockets,
    accounts,
    tickAccount,
    groundTruth,
    faults,
    served,
    listen: options,
    onStop: () => clearInterval(keepaliveTimer),
  });
}

/** The account's devices as GET /api/devices lists them. */
function devicesOf(account: Account): TraccarDevice[] {
  return account.fleet.vehicles.map((identity, index) => {
    const position = account.latest.get(index);
    const lastUpdateMs = position ? Date.parse(position.fixTime) : account.fleet.now;
    return simulatedDevice(identity, account.status.get(index) ?? 'unknown', lastUpdateMs, position?.id ?? 0);
  });
}

/** An account's starting point: every vehicle's latest position as of now, its status, and the log's end. */
function openAccount(token: string, fleet: FleetModel, nowMs: number): Account {
  fleet.advanceTo(nowMs);
  const account: Account = {
    token,
    fleet,
    cursor: fleet.endSeq,
    uniqueIds: new Map(fleet.vehicles.map((v) => [v.traccarDeviceId, v.traccarUniqueId])),
    latest: new Map(),
    status: new Map(),
    nextPositionId: 1,
    nextEventId: 1,
  };
  const newest = newestPerVehicle(fleet.latest());
  fleet.vehicles.forEach((identity, index) => {
    const fixTimeMs = newest.get(index) ?? fleet.now;
    account.latest.set(index, simulatedPosition(identity, fleet.state(index), { positionId: account.nextPositionId++, fixTimeMs, serverTimeMs: nowMs }));
    account.status.set(index, deviceStatus(fleet.state(index)));
  });
  return account;
}

/** The observed time of each vehicle's newest sample among `samples`: the fix time of its position. */
function newestPerVehicle(samples: readonly Sample[]): Map<number, number> {
  const newest = new Map<number, number>();
  for (const sample of samples) newest.set(sample.vehicle, Math.max(sample.observedAtMs, newest.get(sample.vehicle) ?? 0));
  return newest;
}
