/**
 * A Samsara vehicle-stats feed (`GET /fleet/vehicles/stats/feed`, the shape of src/providers/samsara/wire.ts) that
 * serves no vehicles, slowly: a feed read from its start walks `pages` pages of `slowMs` each, and a read from the
 * last page answers at once. Every request is recorded per token (one token per connection), so a test can see
 * whether two pollers ever worked one connection at the same time.
 */
import { createServer, type Server } from 'node:http';

export interface SlowSamsara {
  url: string;
  /** Per token, the [start, end] of every request (ms). */
  calls: Map<string, [number, number][]>;
  /** Pairs of requests on one token that overlapped in time. */
  overlaps(): { token: string; first: [number, number]; second: [number, number] }[];
  stop(): Promise<void>;
}

export async function startSlowSamsara(options: { pages: number; slowMs: number }): Promise<SlowSamsara> {
  const calls = new Map<string, [number, number][]>();
  const server: Server = createServer((request, response) => {
    const started = Date.now();
    const url = new URL(request.url ?? '/', 'http://localhost');
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    if (url.pathname !== '/fleet/vehicles/stats/feed' || token === '') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
      return;
    }
    const page = Number(/^p(\d+)$/.exec(url.searchParams.get('after') ?? '')?.[1] ?? '0');
    const last = page >= options.pages;
    const next = Math.min(page + 1, options.pages);
    const record = () => {
      const list = calls.get(token) ?? [];
      list.push([started, Date.now()]);
      calls.set(token, list);
    };
    const answer = () => {
      record();
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ data: [], pagination: { endCursor: `p${last ? page : next}`, hasNextPage: !last && next < options.pages } }));
    };
    const timer = setTimeout(answer, last ? 20 : options.slowMs);
    // A request its poller gave up on (a deadline) counts for as long as it was open.
    response.on('close', () => {
      if (response.writableEnded) return;
      clearTimeout(timer);
      record();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    overlaps() {
      const found: ReturnType<SlowSamsara['overlaps']> = [];
      for (const [token, list] of calls) {
        const sorted = [...list].sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < sorted.length; i += 1) {
          if (sorted[i]![0] < sorted[i - 1]![1]) found.push({ token, first: sorted[i - 1]!, second: sorted[i]! });
        }
      }
      return found;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
