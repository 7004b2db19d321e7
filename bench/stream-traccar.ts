/**
 * `bench:stream`'s Traccar feed, run as a child process: one Traccar user's server as a stream client sees it
 * (traccar/traccar api/AsyncSocket, AsyncSocketServlet, DeviceResource): GET /api/devices with the token, and the
 * websocket at /api/socket?token= pushing one position per frame (AsyncSocket.onUpdatePosition sends
 * `List.of(position)`), every device once a second. Each position's fix time is the moment it is sent, to the
 * millisecond (and recorded, `publishedAtMs[device * seconds + second]`): the reading's observed time is its publish
 * time. A position as a Traccar Client tracker reports it (fix, speed, course; battery, odometer, ignition, motion):
 * six canonical readings under the connection's default options.
 *
 * src/sim/traccar is not used: its fleet model decides when vehicles report, and a fix time it samples may be older
 * than the frame that carries it. argv: token devices. Messages as in stream-schedule.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { TraccarDevice, TraccarPosition } from '../src/providers/traccar/wire.ts';
import { benchTraccarDevice, paceFeed, type FeedCommand, type FeedPace, type FeedReport } from './stream-schedule.ts';

const parent = process.send?.bind(process) as ((report: FeedReport) => boolean) | undefined;
if (!parent) throw new Error('bench/stream-traccar.ts runs as a child process with an IPC channel');
const [token, devicesText] = process.argv.slice(2);
if (!token || !devicesText) throw new Error('usage: stream-traccar.ts <token> <devices>');
const count = Number(devicesText);

const traccarDate = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '+00:00');
const startedMs = Date.now();
const devices: TraccarDevice[] = Array.from({ length: count }, (_, i) => ({
  id: benchTraccarDevice(i).id,
  name: `Bench ${i}`,
  uniqueId: benchTraccarDevice(i).uniqueId,
  status: 'online',
  lastUpdate: traccarDate(startedMs),
  positionId: 0,
  disabled: false,
}));

const sockets = new Set<WebSocket>();
const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://bench');
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? url.searchParams.get('token');
  if (request.method !== 'GET' || url.pathname !== '/api/devices') return void response.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
  if (bearer !== token) return void response.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"a valid token is required"}');
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(devices));
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (request, socket, head) => {
  const url = new URL(request.url ?? '/', 'http://bench');
  if (url.pathname !== '/api/socket' || url.searchParams.get('token') !== token) {
    socket.end('HTTP/1.1 500 Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => undefined);
    // Traccar opens with the latest position of every device; there is none yet.
    ws.send(JSON.stringify({ positions: [] }));
    parent({ connected: true });
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));

let pace: FeedPace | undefined;
let positionId = 1;
process.on('message', (command: FeedCommand) => {
  if ('stop' in command) return pace?.stop();
  const { startMs, seconds } = command.start;
  const publishedAtMs = new Array<number>(count * seconds).fill(Number.NaN);
  let sent = 0;
  let lateMs = 0;
  pace = paceFeed(count, seconds, startMs, (i, second) => {
    const now = Date.now();
    lateMs = Math.max(lateMs, now - (startMs + second * 1000 + (i * 1000) / count));
    publishedAtMs[i * seconds + second] = now;
    const position: TraccarPosition = {
      id: positionId++,
      deviceId: benchTraccarDevice(i).id,
      protocol: 'osmand',
      serverTime: traccarDate(now),
      deviceTime: traccarDate(now),
      fixTime: traccarDate(now),
      valid: true,
      latitude: 52.4 + (i % 100) / 1000,
      longitude: 13.4 + second / 10_000,
      altitude: 0,
      speed: (i + second) % 50,
      course: (i * 7 + second) % 360,
      attributes: { batteryLevel: 80, odometer: 10_000_000 + i * 1000 + second * 10, ignition: true, motion: true },
    };
    const frame = JSON.stringify({ positions: [position] });
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
    sent += 1;
  });
  void pace.done.then(() => parent({ done: { sent, lateMs, publishedAtMs } }));
});
process.on('disconnect', () => {
  for (const ws of sockets) ws.terminate();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
parent({ ready: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } });
