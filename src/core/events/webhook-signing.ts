/**
 * Standard Webhooks signatures (standardwebhooks.com): the secret is `whsec_` and base64 of random bytes; a message
 * is signed as base64 HMAC-SHA256, keyed by those bytes, of `<webhook-id>.<webhook-timestamp>.<body>`, and sent as
 * `webhook-signature: v1,<signature>`. Receivers verify with the `standardwebhooks` or `svix` libraries as they are.
 */
import { createHmac, randomBytes } from 'node:crypto';

const prefix = 'whsec_';

export function newSigningSecret(): string {
  return `${prefix}${randomBytes(32).toString('base64')}`;
}

export function signMessage(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.startsWith(prefix) ? secret.slice(prefix.length) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}
