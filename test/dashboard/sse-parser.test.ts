/**
 * The dashboard's text/event-stream parser against the HTML Living Standard's rules: every line ending, a CRLF
 * split between chunks, multi-line data, comments, ids kept across events, retry, and what is never dispatched.
 */
import { describe, expect, it } from 'vitest';
import { createSseParser, type SseMessage } from '../../src/dashboard/sse-parser.ts';

function parse(chunks: readonly string[], lastEventId = '') {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = createSseParser({ onMessage: (m) => messages.push(m), onComment: (c) => comments.push(c), onRetry: (ms) => retries.push(ms) }, lastEventId);
  for (const chunk of chunks) parser.push(chunk);
  return { messages, comments, retries, lastEventId: parser.lastEventId };
}

/** What the server writes: a retry and a comment first, heartbeats between events. */
const stream = [
  'retry: 2000',
  ': fleetwire events of workspace w after 4',
  '',
  'id: 5',
  'event: fleetwire.vehicle.state.changed',
  'data: {"a":1}',
  '',
  ': heartbeat 2026-12-02T10:00:00.000Z',
  '',
  'id: 6',
  'event: fleetwire.vehicle.charging.started',
  'data: first line',
  'data:second line',
  'data',
  '',
];

const expected = {
  messages: [
    { type: 'fleetwire.vehicle.state.changed', data: '{"a":1}', lastEventId: '5' },
    { type: 'fleetwire.vehicle.charging.started', data: 'first line\nsecond line\n', lastEventId: '6' },
  ],
  comments: [' fleetwire events of workspace w after 4', ' heartbeat 2026-12-02T10:00:00.000Z'],
  retries: [2000],
  lastEventId: '6',
};

describe('the event-stream parser', () => {
  for (const [name, eol] of [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    it(`reads a stream whose lines end in ${name}, however it is cut into chunks`, () => {
      const text = stream.map((line) => `${line}${eol}`).join('');
      expect(parse([text])).toEqual(expected);
      // Every cut of the text into two chunks, and one character at a time: a CRLF split across chunks is one break.
      for (let at = 0; at <= text.length; at += 1) expect(parse([text.slice(0, at), text.slice(at)])).toEqual(expected);
      expect(parse([...text])).toEqual(expected);
    });
  }

  it('mixes line endings in one stream and skips a byte-order mark at its start only', () => {
    const { messages } = parse(['\uFEFFdata: a\r\n\r', '\ndata: b\n\rdata: \uFEFFc\r\n\n']);
    expect(messages.map((m) => m.data)).toEqual(['a', 'b', '\uFEFFc']);
  });

  it('strips one space after the colon, takes a line without a colon as a field with no value, and ignores unknown fields', () => {
    const { messages } = parse(['data:  two spaces\nfoo: bar\ndata:\nevent\n\n', 'data\n\n']);
    // `event` without a value leaves the type empty, which dispatches as `message`.
    expect(messages).toEqual([
      { type: 'message', data: ' two spaces\n', lastEventId: '' },
      { type: 'message', data: '', lastEventId: '' },
    ]);
  });

  it('keeps the last event id across events, starts from the one given, ignores one holding NUL and lets an empty one clear it', () => {
    const resumed = parse(['data: a\n\nid: 9\ndata: b\n\ndata: c\n\n'], '7');
    expect(resumed.messages.map((m) => [m.data, m.lastEventId])).toEqual([
      ['a', '7'],
      ['b', '9'],
      ['c', '9'],
    ]);
    expect(parse(['id: 1\0\ndata: x\n\n'], '3').messages[0]!.lastEventId).toBe('3');
    expect(parse(['id\ndata: x\n\n'], '3').lastEventId).toBe('');
  });

  it('dispatches no event for a block without data, though its id still counts, nor for one the stream did not finish', () => {
    const { messages, lastEventId } = parse(['id: 12\nevent: fleetwire.vehicle.state.changed\n\n', 'data: unfinished\n']);
    expect(messages).toEqual([]);
    expect(lastEventId).toBe('12');
    // The type of the block without data does not leak into the next event.
    expect(parse(['event: x\n\ndata: y\n\n']).messages).toEqual([{ type: 'message', data: 'y', lastEventId: '' }]);
    // An id is taken only when its block ends.
    expect(parse(['data: z\n\nid: 13\n']).lastEventId).toBe('');
  });

  it('takes a retry of digits only', () => {
    expect(parse(['retry: 1500\nretry: 2s\nretry: -1\nretry:\nretry: 0\n\n']).retries).toEqual([1500, 0]);
  });
});
