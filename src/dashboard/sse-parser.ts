/**
 * A parser for text/event-stream, as the HTML Living Standard's "Interpreting an event stream" section says: lines end in
 * CRLF, LF or CR (a CRLF may be split between two chunks); a line starting with a colon is a comment; the fields
 * are `event`, `data` (lines joined with LF), `id` (kept across events, ignored when it holds NUL) and `retry`
 * (digits only); a blank line dispatches, and a block without data dispatches nothing but still moves the last
 * event id. An event the stream did not finish before it ended is never dispatched. Pure: no DOM, no network.
 */

export interface SseMessage {
  /** The `event` field, `message` when the block had none. */
  type: string;
  data: string;
  /** The last event id the stream had set when this event was dispatched ('' when none). */
  lastEventId: string;
}

export interface SseParser {
  /** Feeds the next piece of decoded text, of any length; dispatches every event it completes. */
  push(text: string): void;
  /** The id to resume after (Last-Event-ID): set when a block is dispatched, kept until a later block sets it. */
  readonly lastEventId: string;
}

export interface SseHandlers {
  onMessage(message: SseMessage): void;
  onComment?(text: string): void;
  onRetry?(ms: number): void;
}

const lf = 10;
const cr = 13;

export function createSseParser(handlers: SseHandlers, lastEventId = ''): SseParser {
  /** Text after the last line break seen: the start of a line still coming. */
  let pending = '';
  /** The last chunk ended in CR: a LF at the start of the next belongs to that line break. */
  let afterCr = false;
  let started = false;
  let data = '';
  let type = '';
  let idBuffer = lastEventId;
  let dispatchedId = lastEventId;

  const dispatch = () => {
    dispatchedId = idBuffer;
    if (data === '') {
      type = '';
      return;
    }
    const message = { type: type || 'message', data: data.endsWith('\n') ? data.slice(0, -1) : data, lastEventId: dispatchedId };
    data = '';
    type = '';
    handlers.onMessage(message);
  };

  const line = (text: string) => {
    if (text === '') return dispatch();
    if (text.startsWith(':')) return handlers.onComment?.(text.slice(1));
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        type = value;
        break;
      case 'data':
        data += `${value}\n`;
        break;
      case 'id':
        if (!value.includes('\0')) idBuffer = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) handlers.onRetry?.(Number(value));
        break;
      default:
        // Fields the standard does not name are ignored.
        break;
    }
  };

  return {
    push(chunk) {
      let text = chunk;
      if (text === '') return;
      if (!started) {
        started = true;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      if (afterCr) {
        afterCr = false;
        if (text.charCodeAt(0) === lf) text = text.slice(1);
      }
      const all = pending + text;
      let start = 0;
      // `pending` holds no line break, so only the new text needs scanning.
      for (let i = pending.length; i < all.length; i += 1) {
        const c = all.charCodeAt(i);
        if (c !== lf && c !== cr) continue;
        line(all.slice(start, i));
        if (c === cr) {
          if (i + 1 === all.length) afterCr = true;
          else if (all.charCodeAt(i + 1) === lf) i += 1;
        }
        start = i + 1;
      }
      pending = all.slice(start);
    },
    get lastEventId() {
      return dispatchedId;
    },
  };
}
