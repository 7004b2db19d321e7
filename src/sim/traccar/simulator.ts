/**
 * A Traccar server as a stream client sees it (reference/provider-wire-formats.md §3a; traccar/traccar
 * api/AsyncSocket, AsyncSocketServlet, DeviceResource): GET /api/devices, and a websocket at /api/socket?token=
 * that opens with the latest position of every device in one frame and then pushes one entity per frame
 * (AsyncSocket.onUpdateDevice/Position/Event each send `List.of(entity)`): positions, device status changes,
 * ignition events, and the `{}` keepalive. Each account is one Traccar user with its own fleet; a tick advances
 * every fleet and pushes what it produced. Ground truth records every reading that left on an open socket, or in a
 * route report (GET /api/reports/route, answered from the positions streamed, kept `historyRetainMs`).
 *
 * Refused upgrades are answered as Traccar's Jetty does, never 401: a token LoginService refuses makes the
 * socket creator throw (500); no token at all makes it return no socket, which Jetty 10/11 answer 503 "WebSocket
 * Endpoint Creation Refused". GET /api/devices answers a refused token 401, as SecurityRequestFilter does.
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
  /**
   * The status of an upgrade whose token no account has. Default 500, as Traccar on Jetty 11 and 12 answers a token
   * LoginService refuses; 503 is what the socket answers with no credentials at all, and what some proxies answer.
   */
  refusedTokenStatus?: 500 | 503;
  /**
   * Whether the connections reading this simulator map `evSoc`/`evCharging` (simulatedEvAttributes): ground truth
   * then includes the state of charge and charging state. Default false, as a connection with default options.
   */
  evAttributesMapped?: boolean;
  /** Faults for GET /api/devices. */
  faults?: FaultInjector;
  /** Interval of the `{}` keepalive on every socket. Default 55 s, as Traccar's own. */
  keepaliveMs?: number;
  /** How often fleets advance and new data is pushed. Default 1 s. */
  tickMs?: number;
  /** How long the positions it streamed are kept for the route report (Traccar's `database.historyDays`). Default 48 h. */
  historyRetainMs?: number;
  /** Traccar's `report.maxPositions`: the most positions a report answers per device. Default 50,000, as Traccar's. */
  reportMaxPositions?: number;
}

export interface RunningTraccarSimulator extends RunningStreamSimulator {
  /**
   * While true, every request (upgrade and REST) is answered 503, as a proxy in front of a Traccar that is down or
   * restarting answers; sockets already open stay open.
   */
  setUnavailable(unavailable: boolean): void;
}

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
  /** Every position streamed, by vehicle index, oldest first: what the route report answers from. */
  history: Map<number, TraccarPosition[]>;
}

export async function startTraccarSimulator(options: TraccarSimulatorOptions): Promise<RunningTraccarSimulator> {
  const now = options.now ?? Date.now;
  const retainMs = options.historyRetainMs ?? 48 * 3600_000;
  /** Keeps a streamed position for the route report, and lets go of those older than the retention. */
  const keep = (account: Account, index: number, position: TraccarPosition, nowMs: number) => {
    const kept = account.history.get(index) ?? [];
    kept.push(position);
    while (kept.length > 0 && Date.parse(kept[0]!.fixTime) < nowMs - retainMs) kept.shift();
    account.history.set(index, kept);
  };
  const faults = options.faults ?? new FaultInjector();
  const groundTruth = new GroundTruth();
  const served = { requests: 0 };
  const sockets = new SimulatorSockets<Account>(() => {
    served.requests += 1;
  }, '{"positions":[{"deviceId":');
  const accounts = options.accounts.map((account) => openAccount(account.credentials.token, account.fleet, now()));
  for (const account of accounts) account.latest.forEach((position, index) => keep(account, index, position, now()));
  const byToken = new Map(accounts.map((account) => [account.token, account]));

  // Called once per socket a positions frame actually left on.
  const recordPositions = (positions: TraccarPosition[]) => (account: Account) => {
    for (const position of positions) {
      const uniqueId = account.uniqueIds.get(position.deviceId)!;
      for (const reading of servedReadingsOf(position, uniqueId, account.token, Date.parse(position.fixTime), options.evAttributesMapped)) groundTruth.record(reading);
    }
  };

  let unavailable = false;
  const server = createServer((request, response) => {
    served.requests += 1;
    if (unavailable) return void response.writeHead(503, { 'content-type': 'text/html' }).end('<html><body>503 Service Unavailable</body></html>');
    answerRest(request, response, faults, {
      devicesOf: (token) => {
        const account = byToken.get(token);
        return account && devicesOf(account);
      },
      positionsOf: (token, deviceId, fromMs, toMs) => {
        const account = byToken.get(token)!;
        const index = account.fleet.vehicles.findIndex((vehicle) => vehicle.traccarDeviceId === deviceId);
        return (account.history.get(index) ?? []).filter((p) => Date.parse(p.fixTime) >= fromMs && Date.parse(p.fixTime) <= toMs);
      },
      served: (token, positions) => recordPositions([...positions])(byToken.get(token)!),
      maxPositions: options.reportMaxPositions ?? 50_000,
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    served.requests += 1;
    const url = new URL(request.url ?? '/', 'http://simulator');
    if (unavailable) return refuseUpgrade(socket, 503, 'Service Unavailable');
    if (url.pathname !== '/api/socket') return refuseUpgrade(socket, 404, 'not found');
    const token = url.searchParams.get('token');
    if (token === null) return refuseUpgrade(socket, 503, 'WebSocket Endpoint Creation Refused');
    const account = byToken.get(token);
    if (!account) return refuseUpgrade(socket, options.refusedTokenStatus ?? 500, 'Server Error');
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
      keep(account, index, position, nowMs);
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
    // One entity per frame, as AsyncSocket sends. Devices before positions: a client learns a device's uniqueId
    // before the first position that needs it.
    for (const device of devices) sockets.send(mine, JSON.stringify({ devices: [device] }));
    for (const position of positions) sockets.send(mine, JSON.stringify({ positions: [position] }), recordPositions([position]));
    for (const event of events) sockets.send(mine, JSON.stringify({ events: [event] }));
  };

  const keepaliveTimer = setInterval(() => sockets.send(() => true, '{}'), options.keepaliveMs ?? 55_000);
  const running = await runStreamSimulator({
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
  return Object.assign(running, {
    setUnavailable(value: boolean) {
      unavailable = value;
    },
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
    history: new Map(),
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
