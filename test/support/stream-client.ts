/**
 * A minimal stand-in for the stream runtime, for provider tests: opens one planned socket with the `ws` client,
 * runs the adapter's `prepare` before any frame is decoded (frames that arrive meanwhile wait, in order), and
 * decodes every text frame. Waits are bounded.
 */
import { WebSocket } from 'ws';
import type { DecodedFrame, SocketPlan, StreamAdapter, StreamConnectionContext } from '../../src/providers/stream-adapter.ts';

export interface ReceivedFrame {
  text: string;
  atMs: number;
  decoded: DecodedFrame;
}

export interface StreamTestClient {
  ws: WebSocket;
  session: Map<string, unknown>;
  frames: ReceivedFrame[];
  /** Resolves with the close code once the socket has closed. */
  closed: Promise<number>;
  waitFor(what: string, predicate: () => boolean, timeoutMs?: number): Promise<void>;
  /** Closes from our side and waits until the close handshake is done (every frame sent before it has arrived). */
  close(): Promise<void>;
}

export function context<C>(baseUrl: string, credentials: C, boundDevices: string[] = []): StreamConnectionContext<C> {
  return { baseUrl, credentials, options: {}, boundDevices, signal: new AbortController().signal };
}

export async function waitUntil(what: string, predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Opens the socket; rejects with the server's answer when the upgrade is refused. */
export async function connectStream<C extends Record<string, unknown>>(
  adapter: StreamAdapter<C>,
  ctx: StreamConnectionContext<C>,
  plan: SocketPlan,
  session: Map<string, unknown> = new Map(),
): Promise<StreamTestClient> {
  const ws = new WebSocket(plan.url, { headers: plan.headers });
  const frames: ReceivedFrame[] = [];
  const pending: { text: string; atMs: number }[] = [];
  let prepared = false;
  const decode = (text: string, atMs: number) => frames.push({ text, atMs, decoded: adapter.decode(text, plan, session, atMs) });
  ws.on('message', (data, isBinary) => {
    if (isBinary) throw new Error('the simulator sent a binary frame');
    const text = data.toString();
    if (prepared) decode(text, Date.now());
    else pending.push({ text, atMs: Date.now() });
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => undefined);
  await adapter.prepare?.(ctx, plan, session);
  prepared = true;
  for (const frame of pending.splice(0)) decode(frame.text, frame.atMs);
  return {
    ws,
    session,
    frames,
    closed,
    waitFor: (what, predicate, timeoutMs) => waitUntil(what, predicate, timeoutMs),
    close: async () => {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      await Promise.race([closed, sleep(3000).then(() => ws.terminate())]);
    },
  };
}

/** Every reading decoded so far, keyed like ground truth: `externalDeviceId|signal|observedAtMs`. */
export function decodedReadings(frames: readonly ReceivedFrame[]): Map<string, { value: unknown; resend: boolean }[]> {
  const map = new Map<string, { value: unknown; resend: boolean }[]>();
  for (const frame of frames) {
    if (frame.decoded.kind !== 'readings') continue;
    for (const device of frame.decoded.devices) {
      for (const reading of device.readings) {
        const key = `${device.externalDeviceId}|${reading.signal}|${Date.parse(reading.observedAt)}`;
        const list = map.get(key) ?? [];
        list.push({ value: reading.value, resend: frame.decoded.resend === true });
        map.set(key, list);
      }
    }
  }
  return map;
}
