/**
 * The Traccar simulator's REST side: GET /api/devices (Traccar api/resource/DeviceResource, as described in
 * reference/provider-wire-formats.md §3a) with the token as a Bearer header or the `token` query parameter, the
 * positions the simulator streamed as Traccar's route report (`GET /api/reports/route?deviceId=&from=&to=`,
 * api/resource/ReportResource.getRoute: every `deviceId` given, fix times in [from, to], oldest first, at most
 * `report.maxPositions` per device) and as `GET /api/positions?deviceId=&from=&to=` (api/resource/PositionResource,
 * one device), and the faults a test queues for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultInjector, FaultKind } from '../faults.ts';
import type { TraccarDevice, TraccarPosition } from '../../providers/traccar/wire.ts';

export interface RestAccounts {
  /** The device list of the token's user, or undefined for a token nobody has. */
  devicesOf(token: string): TraccarDevice[] | undefined;
  /** One device's kept positions with a fix time in [fromMs, toMs], oldest first; `served` records them as sent. */
  positionsOf(token: string, deviceId: number, fromMs: number, toMs: number): TraccarPosition[];
  served(token: string, positions: readonly TraccarPosition[]): void;
  /** Traccar's `report.maxPositions`: the most positions one answer holds per device. */
  maxPositions: number;
}

const restPaths = ['/api/devices', '/api/reports/route', '/api/positions'];

export function answerRest(request: IncomingMessage, response: ServerResponse, faults: FaultInjector, accounts: RestAccounts): void {
  const url = new URL(request.url ?? '/', 'http://simulator');
  if (request.method !== 'GET' || !restPaths.includes(url.pathname)) return json(response, 404, { message: 'not found' });
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  const token = bearer ?? url.searchParams.get('token') ?? '';
  const devices = accounts.devicesOf(token);
  if (!devices) return json(response, 401, { message: 'a valid token is required' });
  let body: unknown = devices;
  const positions: TraccarPosition[] = [];
  if (url.pathname !== '/api/devices') {
    // Traccar's DateParameterConverter reads ISO 8601; a report without both ends fails in the report provider.
    const fromMs = Date.parse(url.searchParams.get('from') ?? '');
    const toMs = Date.parse(url.searchParams.get('to') ?? '');
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) return json(response, 400, { message: 'from and to are required ISO 8601 dates' });
    const ids = url.searchParams.getAll('deviceId').map(Number);
    if (url.pathname === '/api/positions' && ids.length !== 1) return json(response, 400, { message: 'one deviceId' });
    const visible = new Set(devices.map((device) => device.id));
    // DeviceUtil.getAccessibleDevices: a device of another user is simply not in the report.
    for (const id of ids.filter((id) => visible.has(id))) positions.push(...accounts.positionsOf(token, id, fromMs, toMs).slice(0, accounts.maxPositions));
    body = positions;
  }
  // Faults only hit authenticated requests, so a queued fault lands on the call a test makes.
  const fault = faults.next();
  if (fault) return answerFault(response, fault, JSON.stringify(body));
  if (positions.length > 0) accounts.served(token, positions);
  json(response, 200, body);
}

function answerFault(response: ServerResponse, fault: FaultKind, body: string): void {
  switch (fault) {
    case 'rate_limit':
      response.setHeader('retry-after', '1');
      return json(response, 429, { message: 'too many requests' });
    case 'server_error':
      return json(response, 500, { message: 'internal server error' });
    case 'auth':
      return json(response, 401, { message: 'session expired' });
    case 'timeout':
      // Never answered: the client's own timeout must fire. stop() closes the connection.
      return;
    case 'malformed':
      response.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
      return;
    case 'truncated':
      response.writeHead(200, { 'content-type': 'application/json' }).end(body.slice(0, Math.max(1, Math.floor(body.length / 2))));
      return;
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
