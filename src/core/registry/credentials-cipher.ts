/**
 * Secrets at rest (provider credentials, webhook signing secrets): AES-256-GCM under FLEETWIRE_SECRET_KEY, with
 * the owner's identity as additional authenticated data, so a ciphertext copied onto another row fails to decrypt.
 * Stored as `v1.<iv>.<tag>.<ciphertext>` (base64url parts).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const version = 'v1';

function associatedData(workspaceId: string, connectionId: string): Buffer {
  return Buffer.from(`fleetwire:provider-connection:${workspaceId}:${connectionId}`, 'utf8');
}

/** What a webhook subscription's signing secret is bound to. */
export const webhookAad = (workspaceId: string, webhookId: string) => Buffer.from(`fleetwire:webhook:${workspaceId}:${webhookId}`, 'utf8');

export function encryptCredentials(
  key: Buffer,
  ids: { workspaceId: string; connectionId: string },
  credentials: Record<string, unknown>,
): string {
  return sealText(key, associatedData(ids.workspaceId, ids.connectionId), JSON.stringify(credentials));
}

/** Encrypts `text` bound to `aad` (what owns it). */
export function sealText(key: Buffer, aad: Buffer, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [version, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
}

export class CredentialsUnreadableError extends Error {
  constructor() {
    super('provider credentials cannot be decrypted with the configured FLEETWIRE_SECRET_KEY');
    this.name = 'CredentialsUnreadableError';
  }
}

export function decryptCredentials(
  key: Buffer,
  ids: { workspaceId: string; connectionId: string },
  stored: string,
): Record<string, unknown> {
  return JSON.parse(openText(key, associatedData(ids.workspaceId, ids.connectionId), stored)) as Record<string, unknown>;
}

/** Decrypts what `sealText` made for the same `aad`; CredentialsUnreadableError when it cannot. */
export function openText(key: Buffer, aad: Buffer, stored: string): string {
  const [tag0, ivText, tagText, ciphertextText] = stored.split('.');
  if (tag0 !== version || !ivText || !tagText || ciphertextText === undefined) throw new CredentialsUnreadableError();
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'));
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(tagText, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertextText, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new CredentialsUnreadableError();
  }
}
