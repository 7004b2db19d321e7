/**
 * A webhook receiver on loopback for the delivery acceptance tests: it verifies every request with the
 * `standardwebhooks` package as it is, keeps what arrived in arrival order, and answers 2xx unless told to refuse;
 * it can be closed and opened again on the same port (a receiver that is down). And the checks of what it got
 * against the event log, the ground truth of what committed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { Sql } from '../../src/core/db/database.ts';

export interface Receipt {
  /** Arrival order over the whole receiver, from 0. */
  n: number;
  id: string;
  subject: string;
  sequence: number;
  type: string;
  time: string;
  data: unknown;
}

export interface WebhookReceiver {
  url: string;
  /** Requests answered 2xx, verified, in arrival order. */
  received: Receipt[];
  /** Requests answered with the refusal status, by event id, in arrival order. */
  refused: string[];
  /** Requests that failed verification (or came before `trust`): none is expected. */
  unverified: string[];
  /** The signing secret to verify with (known once the subscription is made, which needs the URL first). */
  trust(secret: string): void;
  /** From now on answer this status instead of 204 (`undefined` answers 204 again). */
  refuseWith(status: number | undefined): void;
  /** Closes the port: connections are refused until `reopen`. */
  close(): Promise<void>;
  reopen(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: Receipt[] = [];
  const refused: string[] = [];
  const unverified: string[] = [];
  let verifier: Webhook | undefined;
  let refusal: number | undefined;
  let arrivals = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(request.headers['webhook-id']);
      if (refusal !== undefined) {
        refused.push(id);
        response.writeHead(refusal).end();
        return;
      }
      let event: { id: string; subject: string; sequence: string; type: string; time: string; data: unknown };
      try {
        if (!verifier) throw new Error('no secret yet');
        event = verifier.verify(body, request.headers as Record<string, string>) as typeof event;
        if (event.id !== id) throw new Error(`webhook-id ${id} is not the event's id ${event.id}`);
      } catch (error) {
        unverified.push(`${id}: ${(error as Error).message}`);
        // Answered 2xx all the same: a refusal would hold the line and hide everything after it.
        response.writeHead(204).end();
        return;
      }
      received.push({ n: arrivals++, id: event.id, subject: event.subject, sequence: Number(event.sequence), type: event.type, time: event.time, data: event.data });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/fleet-events`,
    received,
    refused,
    unverified,
    trust: (secret) => {
      verifier = new Webhook(secret);
    },
    refuseWith: (status) => {
      refusal = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    reopen: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
  };
}

/** An event as the log holds it: what a receipt carries, and its log position. */
export type CommittedEvent = Omit<Receipt, 'n'> & { position: number | null };

/** The workspace's committed events of `types`, per subject in sequence order. */
export async function committedEvents(sql: Sql, workspaceId: string, types: readonly string[]): Promise<CommittedEvent[]> {
  // Ordered by the column, not by the text it is selected as (which would put 10 before 2).
  const { rows } = await sql.query<{ id: string; subject: string; sequence: string; type: string; time: Date; data: unknown; position: string | null }>(
    `SELECT id, subject, sequence::text, type, time, data::json AS data, position::text FROM events
      WHERE workspace_id = $1 AND type = ANY($2::text[]) ORDER BY subject, events.sequence`,
    [workspaceId, [...types]],
  );
  return rows.map((r) => ({ ...r, sequence: Number(r.sequence), time: r.time.toISOString(), position: r.position === null ? null : Number(r.position) }));
}

/**
 * What at-least-once, in order per subject, allows a receiver to see, checked against the committed events; answers
 * the first problems found (none when delivery kept its promise). For each subject, with its committed events ranked
 * 1, 2, ... by sequence and its receipts in arrival order:
 *  - every receipt is a committed event, with the committed type, subject, sequence, time and data;
 *  - every committed event was received;
 *  - no event arrives before every earlier event of its subject has arrived once: so the first receipts, which a
 *    receiver de-duplicating by webhook-id keeps, are exactly the committed events in order;
 *  - a receipt after a receipt of rank k is either rank k + 1 (a delivery run goes on without skipping) or of rank
 *    k or lower (a run starting again from the subscription's cursor after a crash or a failed attempt, which
 *    repeats what came after that cursor). A jump forward is never allowed, even to an event seen before.
 */
export function deliveryProblems(receipts: readonly Receipt[], committed: readonly CommittedEvent[], limit = 10): string[] {
  const problems: string[] = [];
  const byId = new Map(committed.map((e) => [e.id, e]));
  const rank = new Map<string, number>();
  const perSubject = new Map<string, number>();
  for (const e of committed) {
    const k = (perSubject.get(e.subject) ?? 0) + 1;
    perSubject.set(e.subject, k);
    rank.set(e.id, k);
  }
  const seen = new Set<string>();
  const last = new Map<string, { rank: number; max: number }>();
  for (const r of receipts) {
    const e = byId.get(r.id);
    if (!e) {
      problems.push(`receipt #${r.n} ${r.id} (${r.type} ${r.subject} #${r.sequence}) is no committed event`);
      continue;
    }
    const sent = { subject: r.subject, sequence: r.sequence, type: r.type, time: r.time, data: r.data };
    const stored = { subject: e.subject, sequence: e.sequence, type: e.type, time: e.time, data: e.data };
    if (!sameJson(sent, stored)) problems.push(`receipt #${r.n} ${r.id} says ${JSON.stringify(sent)}, the log ${JSON.stringify(stored)}`);
    const k = rank.get(r.id)!;
    const before = last.get(e.subject) ?? { rank: 0, max: 0 };
    if (k > before.max + 1) problems.push(`receipt #${r.n}: ${e.subject} event of rank ${k} arrived before rank ${before.max + 1} had arrived`);
    else if (k > before.rank + 1) problems.push(`receipt #${r.n}: ${e.subject} went from rank ${before.rank} to ${k}, skipping`);
    last.set(e.subject, { rank: k, max: Math.max(before.max, k) });
    seen.add(r.id);
  }
  for (const e of committed) if (!seen.has(e.id)) problems.push(`committed ${e.type} ${e.subject} #${e.sequence} (${e.id}) was never received`);
  return problems.slice(0, limit);
}

/** JSON equality that ignores key order (jsonb keeps its own). */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([k, v]) => [k, sorted(v)]));
  }
  return value;
}

/** How often each received event arrived beyond its first time, in total. */
export function redeliveries(receipts: readonly Receipt[]): number {
  return receipts.length - new Set(receipts.map((r) => r.id)).size;
}
