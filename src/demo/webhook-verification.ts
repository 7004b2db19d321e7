/**
 * Verifies a delivery as a Standard Webhooks receiver does (standardwebhooks.com, "Verifying webhooks"): the
 * `webhook-timestamp` within a tolerance of now (five minutes either way, as the reference libraries), and one of the
 * space-separated `v1,<base64>` entries of `webhook-signature` equal, compared in constant time, to the HMAC-SHA256
 * of `<webhook-id>.<webhook-timestamp>.<body>` keyed by the secret's bytes (base64 after `whsec_`). Written apart from
 * the signing code on purpose: a verifier that reused the signer would agree with any mistake in it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const defaultToleranceSeconds = 300;

export type Verification = { ok: true; id: string } | { ok: false; reason: string };

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

export function verifyWebhook(
  secret: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
  nowMs: number,
  toleranceSeconds = defaultToleranceSeconds,
): Verification {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'webhook-timestamp is not Unix seconds' };
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > toleranceSeconds) return { ok: false, reason: 'webhook-timestamp is too far from now' };

  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
  for (const entry of signatures.split(' ')) {
    const [version, signature] = entry.split(',', 2);
    // Other versions (v1a, asymmetric) are not ours to check; an entry of another length cannot match.
    if (version !== 'v1' || signature === undefined) continue;
    const given = Buffer.from(signature, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true, id };
  }
  return { ok: false, reason: 'no webhook-signature matches' };
}
