/**
 * A TCP proxy in front of core that can freeze the connections carrying an event stream: the socket stays open but
 * nothing more reaches the browser, as behind a link that died without closing. Other connections, and streams
 * opened afterwards, pass as usual.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface StallingProxy {
  url: string;
  /** Stops forwarding what core writes on every event stream open now. */
  stallStreams(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  stream: boolean;
}

export async function startStallingProxy(targetPort: number): Promise<StallingProxy> {
  const pairs = new Set<Pair>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, stream: false };
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (/^GET \S*\/events[?\s]/m.test(chunk.toString('latin1'))) pair.stream = true;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    stallStreams() {
      for (const pair of pairs) {
        if (!pair.stream) continue;
        pair.upstream.unpipe(pair.client);
        pair.upstream.pause();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        pairs.clear();
        server.close(() => resolve());
      }),
  };
}
