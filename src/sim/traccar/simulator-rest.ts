/**
 * The Traccar simulator's REST side: GET /api/devices (Traccar api/resource/DeviceResource, as described in
 * reference/provider-wire-formats.md §3a) with the token as a Bearer header or the `token` query parameter, and
 * the faults a test queues for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultInjector, FaultKind } from '../faults.ts';
import type { TraccarDevice } from '../../providers/traccar/wire.ts';

/** `devicesOf` answers the device list of the token's user, or undefined for a token nobody has. */
export function answerRest(
  request: IncomingMessage,
  response: ServerResponse,
  faults: FaultInjector,
  devicesOf: (token: string) => TraccarDevice[] | undefined,
): void {
  const url = new URL(request.url ?? '/', 'http://simulator');
  if (request.method !== 'GET' || url.pathname !== '/api/devices') return json(response, 404, { message: 'not found' });
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  const devices = devicesOf(bearer ?? url.searchParams.get('token') ?? '');
  if (!devices) return json(response, 401, { message: 'a valid token is required' });
  // Faults only hit authenticated requests, so a queued fault lands on the call a test makes.
  const fault = faults.next();
  if (fault) return answerFault(response, fault, JSON.stringify(devices));
  json(response, 200, devices);
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
