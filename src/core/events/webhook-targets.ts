/**
 * Where a webhook may point. Unless the deployment allows it (FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE), a target on a
 * private, loopback, link-local or otherwise special address is refused: when the subscription is made or changed
 * (every address its name resolves to), and again at delivery, where the check sits in the connection's own DNS
 * lookup, so the address connected to is the address checked (a name that resolves elsewhere later is caught).
 */
import { lookup as dnsLookup } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { DomainError } from '../errors.ts';

const special = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  special.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['100::', 64],
] as const) {
  special.addSubnet(network, prefix, 'ipv6');
}

/** An IPv4 address carried in an IPv6 one (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`), if any. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return undefined;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** True for an address no public webhook lives at. */
export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return special.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    return v4 !== undefined ? special.check(v4, 'ipv4') : special.check(address, 'ipv6');
  }
  return true;
}

export class WebhookTargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookTargetRefused';
  }
}

function refused(code: string, message: string): DomainError {
  return new DomainError('invalid', code, message);
}

/** The URL as a webhook target: http(s), no credentials in it, at most 2,048 characters. Answers it normalised. */
export function parseTargetUrl(text: string): URL {
  if (text.length > 2048) throw refused('invalid_webhook_url', 'the webhook URL is longer than 2,048 characters');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refused('invalid_webhook_url', 'the webhook URL is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refused('invalid_webhook_url', `the webhook URL must be http or https, not ${url.protocol}`);
  if (url.username || url.password) throw refused('invalid_webhook_url', 'the webhook URL must not carry credentials; it is shown to operators');
  url.hash = '';
  return url;
}

/** The host of a URL without IPv6 brackets. */
const bareHost = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/**
 * Checks a target before a subscription is stored: its host, or every address its name resolves to, must be public
 * unless `allowPrivate`. A name that does not resolve is refused too (a typo would fail every delivery).
 */
export async function checkTarget(text: string, allowPrivate: boolean): Promise<URL> {
  const url = parseTargetUrl(text);
  if (allowPrivate) return url;
  const host = bareHost(url);
  const addresses = isIP(host) ? [host] : await lookup(host, { all: true, verbatim: true }).then(
    (found) => found.map((a) => a.address),
    () => {
      throw refused('webhook_target_unresolvable', `the webhook host ${host} does not resolve`);
    },
  );
  const bad = addresses.find(isSpecialAddress);
  if (bad !== undefined) {
    throw refused('webhook_target_refused', `the webhook host ${host} is a private, loopback or link-local address (${bad}); this deployment does not deliver there`);
  }
  return url;
}

/** Refuses, before connecting, a delivery whose host is a special address given literally. */
export function checkLiteralHost(url: URL, allowPrivate: boolean): void {
  const host = bareHost(url);
  if (!allowPrivate && isIP(host) && isSpecialAddress(host)) throw new WebhookTargetRefused(`the webhook host ${host} is a private, loopback or link-local address`);
}

/** The DNS lookup a delivery connects with: every address it answers must be public, else the connection fails. */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true, verbatim: true }, (error, addresses) => {
      if (error) return callback(error, '', 4);
      const list = addresses as unknown as { address: string; family: number }[];
      if (!allowPrivate) {
        const bad = list.find((a) => isSpecialAddress(a.address));
        if (bad) return callback(new WebhookTargetRefused(`the webhook host ${hostname} resolves to ${bad.address}, a private, loopback or link-local address`), '', 4);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 4);
      callback(null, first.address, first.family);
    });
  };
}
