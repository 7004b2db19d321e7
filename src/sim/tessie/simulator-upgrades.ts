/**
 * How the Fleet Telemetry simulator answers an upgrade it does not accept as-is: the faults a test queues, shaped
 * the way a failing server or proxy answers a websocket handshake (RFC 6455 §4.1: anything but 101 fails it).
 */
import type { Duplex } from 'node:stream';
import type { FaultKind } from '../faults.ts';
import { refuseUpgrade } from '../stream-sockets.ts';

/** Answers an upgrade the way a failing server or proxy would. */
export function upgradeFault(socket: Duplex, fault: FaultKind, held: Set<Duplex>): void {
  switch (fault) {
    case 'rate_limit':
      return refuseUpgrade(socket, 429, 'too many connections');
    case 'server_error':
      return refuseUpgrade(socket, 503, 'service unavailable');
    case 'auth':
      return refuseUpgrade(socket, 401, 'token expired');
    case 'timeout':
      // Never answered: the client's handshake timeout must fire.
      held.add(socket);
      socket.once('close', () => held.delete(socket));
      return;
    case 'malformed':
      socket.once('finish', () => socket.destroy());
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nnot a ws!');
      return;
    case 'truncated':
      socket.once('finish', () => socket.destroy());
      socket.end('HTTP/1.1 101 Switching Proto');
      return;
  }
}

export function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
