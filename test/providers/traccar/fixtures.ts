/**
 * The Traccar fixtures: each file names its source in `_source` (traccar/traccar's code it follows) and holds a
 * websocket `frame`, a REST `body`, or an error answer (`status`, `text`).
 */
import { readFileSync } from 'node:fs';

interface Fixture {
  _source: string;
  frame?: unknown;
  body?: unknown;
  status?: number;
  text?: string;
}

function load(name: string): Fixture {
  const fixture = JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as Fixture;
  if (typeof fixture._source !== 'string' || fixture._source.length < 20) throw new Error(`fixture ${name} does not name its source`);
  return fixture;
}

/** The websocket frame as Traccar sends it: JSON text. */
export function frameText(name: string): string {
  const { frame } = load(name);
  if (frame === undefined) throw new Error(`fixture ${name} has no frame`);
  return JSON.stringify(frame);
}

/** A REST answer body (parsed). */
export function restBody(name: string): unknown {
  const { body } = load(name);
  if (body === undefined) throw new Error(`fixture ${name} has no body`);
  return body;
}

/** An error answer: status and raw text. */
export function errorAnswer(name: string): { status: number; text: string } {
  const { status, text } = load(name);
  if (status === undefined || text === undefined) throw new Error(`fixture ${name} is not an error answer`);
  return { status, text };
}
