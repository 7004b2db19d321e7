/**
 * `GET /v1/workspaces/{ws}/events`: the workspace's events as server-sent events, each with its log position as
 * `id`, resuming after `Last-Event-ID` (or `?after=`); without either it starts at the present. Events come from
 * the log, read by position as the head advances, so a client's backlog lives in the database, not in memory: at
 * most `bufferBytes` wait in its socket, and a client that does not take them within `slowClientMs` is told why
 * and disconnected (it resumes by id). A comment line every `heartbeatMs` keeps proxies from closing an idle stream.
 */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { isEventType, toCloudEvent } from '../../events/catalogue.ts';
import type { EventHub } from '../../events/event-hub.ts';
import { oldestRetainedPosition, readEvents } from '../../events/event-log.ts';
import { getWorkspace } from '../../registry/workspaces.ts';
import { HttpProblem, problemResponses } from '../problem.ts';
import { wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

export interface EventStreamTimings {
  heartbeatMs: number;
  slowClientMs: number;
  bufferBytes: number;
}

export const defaultEventStreamTimings: EventStreamTimings = { heartbeatMs: 15_000, slowClientMs: 30_000, bufferBytes: 1024 * 1024 };

const eventQuery = z
  .object({
    types: z.string().max(2000).optional().describe('Comma-separated event types; all when left out'),
    after: z.string().regex(/^\d{1,18}$/).optional().describe('Resume after this event id (as Last-Event-ID does)'),
  })
  .strict();

/** Events read from the log per round. */
const pageSize = 500;

function parseTypes(text: string | undefined): string[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const types = [...new Set(text.split(',').map((t) => t.trim()).filter((t) => t.length > 0))];
  const unknown = types.filter((t) => !isEventType(t));
  if (unknown.length > 0) throw new HttpProblem(400, 'unknown_event_type', `not event types: ${unknown.slice(0, 5).map((t) => JSON.stringify(t.slice(0, 80))).join(', ')}`);
  return types;
}

function parseLastEventId(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || text === '') return undefined;
  if (!/^\d{1,18}$/.test(text)) throw new HttpProblem(400, 'invalid_last_event_id', 'Last-Event-ID must be an event id this stream sent');
  return Number(text);
}

export function registerEventRoutes(app: TypedApp, deps: { db: Database; hub: EventHub; timings?: Partial<EventStreamTimings> }): void {
  const timings = { ...defaultEventStreamTimings, ...deps.timings };
  app.get(
    '/v1/workspaces/:ws/events',
    {
      config: { access: 'workspace' },
      schema: {
        summary: "The workspace's events as a text/event-stream (CloudEvents 1.0 in each data line), resumable by Last-Event-ID",
        tags: ['events'],
        params: wsParams,
        querystring: eventQuery,
        response: problemResponses(400, 401, 403, 404),
      },
    },
    async (request, reply) => {
      const workspaceId = request.params.ws;
      await getWorkspace(deps.db, workspaceId);
      const types = parseTypes(request.query.types);
      const resumeAfter = parseLastEventId(request.headers['last-event-id']) ?? (request.query.after === undefined ? undefined : Number(request.query.after));
      // A resume from before what is kept starts at the oldest kept event.
      let cursor = resumeAfter === undefined ? deps.hub.head() : Math.max(resumeAfter, Math.min(await oldestRetainedPosition(deps.db, workspaceId), deps.hub.head()));

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      // The opening block names the start as the last event id (it dispatches nothing), so a client that drops before
      // any event arrives resumes exactly here rather than at the present.
      raw.write(`retry: 2000\nid: ${cursor}\n: fleetwire events of workspace ${workspaceId} after ${cursor}\n\n`);

      let closed = false;
      let pumping = false;
      let again = false;
      const cleanups: (() => void)[] = [];
      const finish = (reason?: { code: string; detail: string }) => {
        if (closed) return;
        closed = true;
        for (const cleanup of cleanups) cleanup();
        if (reason && !raw.destroyed) {
          raw.write(`event: fleetwire.stream.closed\ndata: ${JSON.stringify({ reason: reason.code, detail: reason.detail, lastEventId: String(cursor) })}\n\n`);
        }
        raw.end();
      };

      /** Waits until the socket took what it holds, or says the client is too slow. */
      const drained = () =>
        new Promise<boolean>((resolve) => {
          // Whichever comes first settles it, and the others are removed: a client slow for hours must not gather listeners.
          const settle = (taken: boolean) => {
            clearTimeout(timer);
            raw.off('drain', onDrain);
            raw.off('close', onClose);
            resolve(taken);
          };
          const onDrain = () => settle(true);
          const onClose = () => settle(false);
          const timer = setTimeout(() => settle(false), timings.slowClientMs);
          raw.once('drain', onDrain);
          raw.once('close', onClose);
        });

      const pump = async () => {
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        try {
          do {
            again = false;
            while (!closed && cursor < deps.hub.head()) {
              const through = deps.hub.head();
              const events = await readEvents(deps.db, { workspaceId, after: cursor, through, types, limit: pageSize });
              for (const event of events) {
                if (closed) return;
                raw.write(`id: ${event.position}\nevent: ${event.type}\ndata: ${JSON.stringify(toCloudEvent(event))}\n\n`);
                cursor = event.position;
                if (raw.writableLength > timings.bufferBytes && !(await drained())) {
                  finish({ code: 'client_too_slow', detail: `the client did not take ${timings.bufferBytes} bytes of events within ${timings.slowClientMs} ms; resume with Last-Event-ID` });
                  return;
                }
              }
              // Past everything up to `through` that this stream's filter wants.
              if (events.length < pageSize) cursor = Math.max(cursor, through);
            }
          } while (again && !closed);
        } catch (error) {
          request.log.warn({ err: error }, 'event stream failed');
          finish({ code: 'server_error', detail: 'the server could not read the event log; resume with Last-Event-ID' });
        } finally {
          pumping = false;
        }
      };

      const heartbeat = setInterval(() => {
        if (!closed) raw.write(`: heartbeat ${new Date().toISOString()}\n\n`);
      }, timings.heartbeatMs);
      heartbeat.unref();
      cleanups.push(() => clearInterval(heartbeat));
      cleanups.push(deps.hub.onAdvance(() => void pump()));
      cleanups.push(deps.hub.onStop(() => finish({ code: 'server_stopping', detail: 'the server is stopping; resume with Last-Event-ID' })));
      raw.on('close', () => finish());
      void pump();
    },
  );
}
