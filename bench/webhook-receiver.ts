/**
 * A webhook receiver on loopback for `bench/events.ts`, run as a child process so that taking deliveries does not
 * wait behind core's work (a real receiver is another process). It answers 204 at once and keeps what it got: each
 * delivery's event id, type, the `observedAt` of the readings that caused it, and when its body had fully arrived
 * (epoch milliseconds, sub-millisecond, on the same wall clock as its parent's).
 *
 * Messages in: `'count'` (answers `{ count }`), `'dump'` (answers `{ receipts }`). It sends `{ port }` once
 * listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export type Receipt = [id: string, type: string, observedAt: string, receivedAtMs: number];

const parent = process.send?.bind(process);
if (!parent) throw new Error('bench/webhook-receiver.ts runs as a child process with an IPC channel');

const receipts: Receipt[] = [];

/** The readings' time: a state change names each signal's, all one time in the benchmark's visits. */
function observedAtOf(data: { observedAt?: string; signals?: Record<string, { observedAt: string }> }): string {
  if (data.observedAt) return data.observedAt;
  const first = Object.values(data.signals ?? {})[0];
  return first?.observedAt ?? '';
}

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const receivedAtMs = performance.timeOrigin + performance.now();
    response.writeHead(204).end();
    const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; type: string; data: Parameters<typeof observedAtOf>[0] };
    receipts.push([event.id, event.type, observedAtOf(event.data), receivedAtMs]);
  });
});
server.keepAliveTimeout = 60_000;

process.on('message', (message: 'count' | 'dump') => {
  if (message === 'count') parent({ count: receipts.length });
  else parent({ receipts });
});
// The parent gone, nobody reads what this holds.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => parent({ port: (server.address() as AddressInfo).port }));
