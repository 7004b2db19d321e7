/**
 * Tessie's hosted Fleet Telemetry websocket as a consumer sees it (developer.tessie.com
 * access-tesla-fleet-telemetry; reference/provider-wire-formats.md §3b): `/<VIN>`, the access token in `Authorization: Bearer` or `?access_token=`, and one JSON record
 * per vehicle and tick carrying what the fleet model sampled. Vehicles send on change and nothing on connect,
 * so a socket stays quiet until its vehicle reports. With `resendRate`, an earlier record comes again with
 * `isResend: true`, as vehicles do when an ack was lost. Ground truth records every reading that left on an
 * open socket.
 */
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { SignalName } from '../../canonical/signals.ts';
import { FaultInjector, xorshift32 } from '../faults.ts';
import type { FleetModel } from '../fleet-model.ts';
import { GroundTruth } from '../ground-truth.ts';
import type { SimulatedAccount, SimulatorListenOptions } from '../simulator.ts';
import { servedReadingsOf, simulatedRecord } from './simulator-records.ts';
import { refuseUpgrade, runStreamSimulator, SimulatorSockets, type RunningStreamSimulator } from '../stream-sockets.ts';
import { safeDecode, upgradeFault } from './simulator-upgrades.ts';
import type { TelemetryRecord } from '../../providers/tesla-fleet-telemetry/wire.ts';

export interface TessieSimulatorOptions extends SimulatorListenOptions {
  accounts: SimulatedAccount<{ accessToken: string }>[];
  /** Faults for websocket upgrades (the only HTTP there is): refusals, a server that never answers, garbage. */
  faults?: FaultInjector;
  /** How often fleets advance and records are sent. Default 1 s. */
  tickMs?: number;
  /** Probability, per record sent, that an earlier record of the same vehicle is sent again. Default 0. */
  resendRate?: number;
  /** Seed of the resend draws, so a run can be replayed. Default 1. */
  resendSeed?: number;
}

export type RunningTessieSimulator = RunningStreamSimulator;

interface Account {
  token: string;
  fleet: FleetModel;
  cursor: number;
  vinIndex: Map<string, number>;
  /** The latest value of every signal per vehicle, as sampled. */
  known: Map<number, Map<SignalName, unknown>>;
  /** Records that left on a socket, per VIN, newest last: what a resend picks from. */
  sent: Map<string, TelemetryRecord[]>;
}

interface SocketTag {
  account: Account;
  vin: string;
}

/** How many sent records per vehicle a resend may pick from. */
const resendWindow = 20;

export async function startTessieSimulator(options: TessieSimulatorOptions): Promise<RunningTessieSimulator> {
  const now = options.now ?? Date.now;
  const faults = options.faults ?? new FaultInjector();
  const resendRate = options.resendRate ?? 0;
  const random = xorshift32(options.resendSeed ?? 1);
  const groundTruth = new GroundTruth();
  const served = { requests: 0 };
  const sockets = new SimulatorSockets<SocketTag>(() => {
    served.requests += 1;
  }, '{"data":[{"key":"BatteryLevel","value":{"stringValue":');
  const accounts = options.accounts.map((account) => openAccount(account.credentials.accessToken, account.fleet, now()));
  const byToken = new Map(accounts.map((account) => [account.token, account]));
  /** Upgrades held unanswered by a timeout fault; stop() destroys them. */
  const held = new Set<Duplex>();

  const server = createServer((_request, response) => {
    served.requests += 1;
    response.writeHead(426, { 'content-type': 'application/json', upgrade: 'websocket' }).end('{"message":"websocket only"}');
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => {
    served.requests += 1;
    const url = new URL(request.url ?? '/', 'http://simulator');
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const account = byToken.get(bearer ?? url.searchParams.get('access_token') ?? '');
    if (!account) return refuseUpgrade(socket, 401, 'a valid access token is required');
    const vin = safeDecode(url.pathname.slice(1));
    if (vin === undefined || !account.vinIndex.has(vin)) return refuseUpgrade(socket, 404, 'no such vehicle');
    const fault = faults.next();
    if (fault) return upgradeFault(socket, fault, held);
    wss.handleUpgrade(request, socket, head, (ws) => sockets.add(ws, { account, vin }));
  });

  const send = (account: Account, record: TelemetryRecord, createdAtMs: number) => {
    let kept = record.isResend;
    sockets.send(
      (tag) => tag.account === account && tag.vin === record.vin,
      JSON.stringify(record),
      () => {
        for (const reading of servedReadingsOf(record, account.token, createdAtMs)) groundTruth.record(reading);
        if (kept) return;
        kept = true;
        const history = account.sent.get(record.vin) ?? [];
        history.push(record);
        if (history.length > resendWindow) history.shift();
        account.sent.set(record.vin, history);
      },
    );
  };

  const tickAccount = (account: Account, nowMs: number) => {
    const { fleet } = account;
    fleet.advanceTo(nowMs);
    const samples = fleet.samplesFrom(account.cursor);
    account.cursor = fleet.endSeq;
    const reports = new Map<number, { sampled: Map<SignalName, unknown>; newestMs: number }>();
    for (const sample of samples) {
      const report = reports.get(sample.vehicle) ?? { sampled: new Map(), newestMs: 0 };
      report.sampled.set(sample.signal, sample.value);
      report.newestMs = Math.max(report.newestMs, sample.observedAtMs);
      reports.set(sample.vehicle, report);
      account.known.get(sample.vehicle)!.set(sample.signal, sample.value);
    }
    for (const [index, report] of reports) {
      const vin = fleet.vehicles[index]!.vin;
      // Decided before this tick's record is sent, so a resend is always of an earlier record.
      const history = account.sent.get(vin) ?? [];
      const resend = history.length > 0 && random() < resendRate ? history[Math.floor(random() * history.length)] : undefined;
      const record = simulatedRecord(vin, { sampled: report.sampled, known: account.known.get(index)! }, report.newestMs);
      if (record) send(account, record, report.newestMs);
      if (resend) send(account, { ...resend, isResend: true }, Date.parse(resend.createdAt!));
    }
  };

  return runStreamSimulator({
    provider: 'tessie',
    server,
    wss,
    sockets,
    accounts,
    tickAccount,
    groundTruth,
    faults,
    served,
    listen: options,
    onStop: () => {
      for (const socket of held) socket.destroy();
      held.clear();
    },
  });
}

function openAccount(token: string, fleet: FleetModel, nowMs: number): Account {
  fleet.advanceTo(nowMs);
  const known = new Map<number, Map<SignalName, unknown>>(fleet.vehicles.map((_, index) => [index, new Map()]));
  for (const sample of fleet.latest()) known.get(sample.vehicle)!.set(sample.signal, sample.value);
  return {
    token,
    fleet,
    cursor: fleet.endSeq,
    vinIndex: new Map(fleet.vehicles.map((v, index) => [v.vin, index])),
    known,
    sent: new Map(),
  };
}
