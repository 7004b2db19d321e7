/**
 * The demo's webhook receiver: a small HTTP server on loopback that verifies each delivery's Standard Webhooks
 * signature and prints one line per event, the way a consumer of Fleetwire's webhooks would start. A delivery it
 * cannot verify is answered 401 and not printed; one it has printed before (a retry, a replay: same `webhook-id`)
 * is answered 200 and not printed again.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from './webhook-verification.ts';

export interface DemoWebhookReceiver {
  readonly url: string;
  /** The subscription's signing secret; until it is given, deliveries are answered 503 (and retried). */
  verifyWith(secret: string): void;
  stop(): Promise<void>;
}

export interface DemoWebhookReceiverOptions {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where each line goes (the console, in the demo). */
  print: (line: string) => void;
  /** A vehicle's name, to print instead of its id; undefined when it has none. */
  vehicleName: (vehicleId: string) => Promise<string | undefined>;
  now?: () => number;
}

/** The fields of a delivered CloudEvent the lines use. */
export interface DeliveredEvent {
  type: string;
  subject?: string;
  time?: string;
  data?: Record<string, unknown>;
}

/** A deliveries' body is one event; anything much larger is not ours. */
const maxBodyBytes = 1024 * 1024;
/** Ids remembered for de-duplication; a replay of a week of a busy workspace could be more, the demo's is not. */
const rememberedIds = 10_000;

const printable = (text: string) => text.replace(/[\p{Cc}]+/gu, ' ');
const pct = (value: unknown) => (typeof value === 'number' ? `${Number.isInteger(value) ? value : value.toFixed(1)}%` : '?%');
const words = (value: unknown) => (typeof value === 'string' ? value.replace(/_/g, ' ') : String(value));
const pad2 = (n: number) => String(n).padStart(2, '0');

/** HH:MM:SS on the machine's clock: the console is read by the person next to it. */
function clockTime(iso: string | undefined): string {
  const d = iso === undefined ? new Date(Number.NaN) : new Date(iso);
  return Number.isNaN(d.getTime()) ? '--:--:--' : `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** What an event says, in a few words: "soc 18% ↓ crossed 20%", "charging started at 42%". */
export function describeEvent(event: DeliveredEvent): string {
  const d = event.data ?? {};
  switch (event.type) {
    case 'fleetwire.vehicle.charging.started':
      return d.socPct === null || d.socPct === undefined ? 'charging started' : `charging started at ${pct(d.socPct)}`;
    case 'fleetwire.vehicle.charging.stopped':
      return `charging stopped${d.socPct === null || d.socPct === undefined ? '' : ` at ${pct(d.socPct)}`} (${words(d.chargingState)})`;
    case 'fleetwire.vehicle.soc.crossed':
      return `soc ${pct(d.socPct)} ${d.direction === 'up' ? '↑' : '↓'} crossed ${pct(d.thresholdPct)}`;
    case 'fleetwire.vehicle.freshness.changed': {
      const reason = (d.reason as { code?: unknown } | null | undefined)?.code;
      return `${words(d.previousStatus)} → ${words(d.status)}${typeof reason === 'string' ? ` (${reason})` : ''}`;
    }
    case 'fleetwire.connection.health.changed':
      return `connection ${words(d.label ?? d.provider)}: ${words(d.previousStatus)} → ${words(d.status)}`;
    default:
      return JSON.stringify(d).slice(0, 120);
  }
}

function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        resolve(undefined);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

export async function startDemoWebhookReceiver(options: DemoWebhookReceiverOptions): Promise<DemoWebhookReceiver> {
  const now = options.now ?? Date.now;
  let secret: string | undefined;
  const seen = new Set<string>();

  const answer = (response: ServerResponse, status: number, text: string) => {
    if (!response.headersSent) response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'POST') return answer(response, 405, 'deliveries are POSTed');
    const body = await readBody(request);
    if (body === undefined) return answer(response, 413, 'too large');
    if (secret === undefined) return answer(response, 503, 'not ready');
    const verified = verifyWebhook(secret, request.headers, body, now());
    if (!verified.ok) return answer(response, 401, verified.reason);
    if (seen.has(verified.id)) return answer(response, 200, 'seen before');
    let event: DeliveredEvent;
    try {
      event = JSON.parse(body.toString('utf8')) as DeliveredEvent;
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string') throw new Error('not an event');
    } catch {
      return answer(response, 400, 'not a CloudEvent');
    }
    // Remembered before the name lookup waits, so a delivery arriving twice at once is printed once.
    seen.add(verified.id);
    if (seen.size > rememberedIds) seen.delete(seen.values().next().value!);
    const vehicleId = typeof event.data?.vehicleId === 'string' ? event.data.vehicleId : undefined;
    const name = vehicleId === undefined ? undefined : await options.vehicleName(vehicleId).catch(() => undefined);
    const who = name ?? vehicleId ?? event.subject ?? '';
    options.print(printable(`webhook  ${clockTime(event.time)}  ${event.type.replace(/^fleetwire\.(vehicle\.)?/, '').padEnd(18)} ${who.padEnd(16)} ${describeEvent(event)}`));
    // Answered after the line is out: the next event of this vehicle comes only then, so lines keep its order.
    answer(response, 200, 'ok');
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(() => answer(response, 500, 'receiver error'));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}/fleetwire-events`,
    verifyWith: (value) => {
      secret = value;
    },
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The dispatcher keeps its connections alive; the demo is stopping, so they are closed rather than waited for.
        server.closeAllConnections();
      })),
  };
}
