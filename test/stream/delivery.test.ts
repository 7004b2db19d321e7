/**
 * Delivery that cannot wedge: a batch core refuses with a 4xx problem is split until the update it will not take is
 * alone, and that one is dead-lettered while the rest goes on in order; a batch answered 500 again and again is
 * isolated the same way, but a core that fails everything is waited out, not emptied into the dead letters; a
 * refused service token stops the stream process with a message that says so; `/readyz` tells whether the process
 * can deliver. Core's answers come over real HTTP on loopback.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { CanonicalUpdate } from '../../src/canonical/update.ts';
import { createLogger } from '../../src/logging.ts';
import { createCoreClient } from '../../src/stream/core-client.ts';
import { DeliveryPipeline } from '../../src/stream/delivery.ts';
import { startStreamHttp } from '../../src/stream/http.ts';
import { startTestCore } from '../support/core.ts';
import { freePort, startFleetwire } from '../support/processes.ts';
import { startTestStream, until } from '../support/stream.ts';
import { startSwitchableProxy } from '../support/switchable-proxy.ts';

const quiet = createLogger({ level: 'silent', name: 'delivery-test', destination: new Writable({ write: (_c, _e, done) => done() }) });
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

type Judge = (updates: CanonicalUpdate[]) => { status: number; code?: string };

/** A stand-in for core's ingest endpoint: `judge` decides each batch's answer; taken updates are kept in order. */
async function fakeCore(judge: Judge): Promise<{ url: string; taken: CanonicalUpdate[]; batches: number }> {
  const state = { url: '', taken: [] as CanonicalUpdate[], batches: 0 };
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      state.batches += 1;
      const { updates } = JSON.parse(text) as { updates: CanonicalUpdate[] };
      const answer = judge(updates);
      if (answer.status !== 200) {
        response.writeHead(answer.status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: answer.status, code: answer.code ?? 'refused' }));
        return;
      }
      state.taken.push(...updates);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: updates.map(() => ({ status: 'processed', readings: [{ status: 'accepted' }] })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  state.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return state;
}

function updates(n: number, poisonAt: readonly number[]): CanonicalUpdate[] {
  return Array.from({ length: n }, (_, i) => ({
    workspaceId: '3f6d0c84-0000-4000-8000-000000000001',
    provider: 'traccar',
    connectionId: '9a1e0000-0000-4000-8000-000000000001',
    externalDeviceId: poisonAt.includes(i) ? `poison-${i}` : `dev-${i}`,
    source: 'stream',
    receivedAt: new Date().toISOString(),
    readings: [{ signal: 'soc_pct', value: i % 100, observedAt: new Date(Date.now() - 10_000 + i).toISOString() }],
  }));
}

function pipeline(url: string) {
  const client = createCoreClient({ coreUrl: url, serviceToken: 'fws_test_token_xxxxxxxxxxxxxxxxxxx' });
  cleanups.push(() => client.close());
  const p = new DeliveryPipeline(client, { flushMs: 20, maxBatchUpdates: 64, maxBatchReadings: 10_000, bufferReadings: 100_000, retryBaseMs: 20, retryCapMs: 100 }, quiet, { holder: 'delivery-test' });
  p.start();
  cleanups.push(() => p.stop(0));
  return p;
}

const hasPoison = (batch: CanonicalUpdate[]) => batch.some((u) => u.externalDeviceId.startsWith('poison'));

describe('delivery to core', () => {
  it('splits a batch core refuses down to the update it will not take, dead-letters that one, and delivers the rest in order', async () => {
    const core = await fakeCore((batch) => (hasPoison(batch) ? { status: 422, code: 'unprocessable' } : { status: 200 }));
    const p = pipeline(core.url);
    const sent = updates(200, [37, 150]);
    for (const u of sent) p.enqueue(u);
    await until('everything delivered or dead-lettered', () => p.totals.buffered === 0 && p.totals.queued === 0, 10_000);
    expect(core.taken.map((u) => u.externalDeviceId)).toEqual(sent.filter((u) => !u.externalDeviceId.startsWith('poison')).map((u) => u.externalDeviceId));
    expect(p.totals).toMatchObject({ delivered: 198, deadLettered: 2, dropped: 0 });
    expect(p.deadLetters.map((d) => [d.externalDeviceId, d.status, d.code])).toEqual([
      ['poison-37', 422, 'unprocessable'],
      ['poison-150', 422, 'unprocessable'],
    ]);
    expect(p.statsFor('9a1e0000-0000-4000-8000-000000000001')).toMatchObject({ deadLettered: 2, buffered: 0 });
  });

  it('isolates an update core keeps answering 500 to while it takes the others, but waits out a core that fails everything', async () => {
    const poisoned = await fakeCore((batch) => (hasPoison(batch) ? { status: 500, code: 'internal_error' } : { status: 200 }));
    const p = pipeline(poisoned.url);
    const sent = updates(50, [10]);
    for (const u of sent) p.enqueue(u);
    await until('the poisoned update set aside', () => p.totals.buffered === 0, 15_000);
    expect(p.totals).toMatchObject({ delivered: 49, deadLettered: 1 });

    let down = true;
    const failing = await fakeCore(() => (down ? { status: 500, code: 'internal_error' } : { status: 200 }));
    const q = pipeline(failing.url);
    for (const u of updates(20, [])) q.enqueue(u);
    await until('many failed attempts', () => failing.batches >= 30, 15_000);
    expect(q.totals).toMatchObject({ delivered: 0, deadLettered: 0, buffered: 20 });
    down = false;
    await until('everything delivered once core recovers', () => q.totals.delivered === 20, 10_000);
    expect(q.totals.deadLettered).toBe(0);
  });
});

describe('the stream process', () => {
  it('stops, naming the variable, when core refuses its service token', async () => {
    const core = await startTestCore();
    cleanups.push(() => core.close());
    const running = startFleetwire(['stream'], {
      FLEETWIRE_CORE_URL: core.url,
      FLEETWIRE_SERVICE_TOKEN: 'fws_not_the_token_core_was_started_with',
      FLEETWIRE_PORT: String(await freePort()),
      FLEETWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), 'fleetwire-badtoken-')),
      FLEETWIRE_LOG_LEVEL: 'warn',
    });
    cleanups.push(() => running.stop('SIGKILL'));
    const code = await Promise.race([running.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    expect(code).toBe(1);
    expect(running.output()).toMatch(/core refused the service token: FLEETWIRE_SERVICE_TOKEN is not the token core was started with/);
  }, 30_000);

  it('answers /readyz 200 while it can deliver, and 503 with the reason when core is gone', async () => {
    const core = await startTestCore();
    cleanups.push(() => core.close());
    const proxy = await startSwitchableProxy(Number(new URL(core.url).port));
    cleanups.push(() => proxy.close());
    const runtime = startTestStream({ coreUrl: proxy.url, serviceToken: core.serviceToken, logger: quiet, holder: 'ready-test', notReadyAfterMs: 1000 });
    cleanups.push(() => runtime.stop());
    const port = await freePort();
    const http = await startStreamHttp(runtime, { host: '127.0.0.1', port, serviceToken: core.serviceToken });
    cleanups.push(() => http.close());
    const readyz = () => fetch(`http://127.0.0.1:${port}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as { code?: string; reasons?: { code: string }[] } }));
    await until('ready', async () => (await readyz()).status === 200);
    await proxy.down();
    const notReady = await until('not ready', async () => {
      const answer = await readyz();
      return answer.status === 503 ? answer : undefined;
    }, 10_000);
    expect(notReady.body.reasons?.map((r) => r.code)).toContain('core_unreachable');
    await proxy.up();
    await until('ready again', async () => (await readyz()).status === 200, 10_000);
  }, 30_000);
});
