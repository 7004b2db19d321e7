/**
 * Provider credentials at rest: AES-256-GCM under FLEETWIRE_SECRET_KEY, with the connection's identity as
 * additional authenticated data, so a ciphertext copied onto another connection's row fails to decrypt.
 * Stored as `v1.<iv>.<tag>.<ciphertext>` (base64url parts).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const version = 'v1';

function associatedData(workspaceId: string, connectionId: string): Buffer {
  return Buffer.from(`fleetwire:provider-connection:${workspaceId}:${connectionId}`, 'utf8');
}

export function encryptCredentials(
  key: Buffer,
  ids: { workspaceId: string; connectionId: string },
  credentials: Record<string, unknown>,
): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData(ids.workspaceId, ids.connectionId));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(credentials), 'utf8'), cipher.final()]);
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
  const [tag0, ivText, tagText, ciphertextText] = stored.split('.');
  if (tag0 !== version || !ivText || !tagText || ciphertextText === undefined) throw new CredentialsUnreadableError();
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'));
    decipher.setAAD(associatedData(ids.workspaceId, ids.connectionId));
    decipher.setAuthTag(Buffer.from(tagText, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertextText, 'base64url')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new CredentialsUnreadableError();
  }
}
