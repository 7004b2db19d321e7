/**
 * Where a Traccar connection's socket and REST calls go, from the operator's base URL. A path in the base URL is
 * kept (Traccar is often served under a prefix behind a proxy), so the socket and /api/devices stay on one server.
 */
import { ProviderError } from '../provider-error.ts';

function parseBase(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ProviderError('permanent', 'Traccar base URL is not a URL');
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new ProviderError('permanent', `Traccar base URL must be http(s), not ${url.protocol}`);
  }
  url.search = '';
  url.hash = '';
  return url;
}

/** The base URL's path without its trailing slash ("" for a server at the root). */
function prefix(url: URL): string {
  return url.pathname.replace(/\/+$/, '');
}

/** `<base>/api/<path>` over http(s). */
export function traccarApiUrl(baseUrl: string, path: string): string {
  const url = parseBase(baseUrl);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  if (url.protocol === 'wss:') url.protocol = 'https:';
  url.pathname = `${prefix(url)}/api/${path}`;
  return url.toString();
}

/** `ws(s)://<base>/api/socket?token=<token>`. The URL carries the token: log it redacted or not at all. */
export function traccarSocketUrl(baseUrl: string, token: string): string {
  const url = parseBase(baseUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  url.pathname = `${prefix(url)}/api/socket`;
  url.searchParams.set('token', token);
  return url.toString();
}
