/**
 * The key provider credentials are encrypted under (FLEETWIRE_SECRET_KEY) belongs to the deployment, not to a
 * process: every core process on one database must hold the same one. The database keeps the key's fingerprint
 * (an HMAC of a fixed text under the key: it says nothing about the key). The first core process records it; a
 * process whose key does not match refuses to start, saying so, instead of failing on every connection. Rotation
 * re-encrypts every connection's credentials under a new key and moves the fingerprint, in one transaction.
 */
import { createHmac } from 'node:crypto';
import type { Database, Sql } from '../db/database.ts';
import { CredentialsUnreadableError, decryptCredentials, encryptCredentials, openText, sealText, webhookAad } from './credentials-cipher.ts';

const fingerprintSetting = 'credential_key_fingerprint';

export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('fleetwire:credential-key-fingerprint:v1').digest('hex').slice(0, 32);
}

export class CredentialKeyMismatchError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'CredentialKeyMismatchError';
  }
}

async function storedFingerprint(sql: Sql, lock = false): Promise<string | undefined> {
  const { rows } = await sql.query<{ value: string }>(`SELECT value FROM deployment_settings WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [fingerprintSetting]);
  return rows[0]?.value;
}

/** True while the database's credentials are encrypted under `key` (false after a rotation this process missed). */
export async function isCredentialKeyCurrent(sql: Sql, key: Buffer): Promise<boolean> {
  const stored = await storedFingerprint(sql);
  return stored === undefined || stored === keyFingerprint(key);
}

/**
 * At start: records the key's fingerprint when the database has none yet (after checking that credentials already
 * stored decrypt under it), or refuses a key that is not the one on record.
 */
export async function checkCredentialKey(db: Database, key: Buffer): Promise<void> {
  const mine = keyFingerprint(key);
  await db.transaction(async (tx) => {
    const stored = await storedFingerprint(tx, true);
    if (stored === mine) return;
    if (stored !== undefined) {
      throw new CredentialKeyMismatchError(
        `FLEETWIRE_SECRET_KEY is not the key this database's provider credentials are encrypted with (its fingerprint is ${mine.slice(0, 12)}, the database's ${stored.slice(0, 12)}): give every process the same key, or re-encrypt with \`fleetwire rotate-key\``,
      );
    }
    // No fingerprint yet (a new database, or one from before fingerprints): the stored credentials decide, those
    // already known to be unreadable aside.
    const { rows } = await tx.query<{ workspace_id: string; id: string; credentials_ciphertext: string }>(
      'SELECT workspace_id, id, credentials_ciphertext FROM provider_connections WHERE credentials_unreadable_at IS NULL ORDER BY created_at LIMIT 20',
    );
    const readable = rows.filter((row) => {
      try {
        decryptCredentials(key, { workspaceId: row.workspace_id, connectionId: row.id }, row.credentials_ciphertext);
        return true;
      } catch {
        return false;
      }
    });
    if (rows.length > 0 && readable.length === 0) {
      throw new CredentialKeyMismatchError(
        `FLEETWIRE_SECRET_KEY decrypts none of the provider credentials stored in this database: start with the key they were encrypted with`,
      );
    }
    await tx.query(
      `INSERT INTO deployment_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
      [fingerprintSetting, mine],
    );
    const recorded = await storedFingerprint(tx);
    if (recorded !== mine) throw new CredentialKeyMismatchError('another process recorded a different FLEETWIRE_SECRET_KEY at the same moment: give every process the same key');
  });
}

export interface RotationReport {
  reencrypted: number;
  /** Connections whose credentials did not decrypt under the old key: left as they were, and marked unreadable. */
  unreadable: { workspaceId: string; connectionId: string }[];
  /** Webhook signing secrets re-encrypted; those that did not decrypt are left, and their subscriptions say so. */
  webhookSecrets: { reencrypted: number; unreadable: { workspaceId: string; webhookId: string }[] };
}

/**
 * Re-encrypts every connection's credentials from `oldKey` to `newKey` and records the new key's fingerprint, in
 * one transaction: either every row moves or none does. Processes still holding the old key fail to decrypt from
 * then on (and say so in readiness) until they are restarted with the new one.
 */
export async function rotateCredentialKey(db: Database, oldKey: Buffer, newKey: Buffer): Promise<RotationReport> {
  return db.transaction(async (tx) => {
    const stored = await storedFingerprint(tx, true);
    if (stored !== undefined && stored !== keyFingerprint(oldKey)) {
      if (stored === keyFingerprint(newKey)) throw new CredentialKeyMismatchError('the database is already encrypted under FLEETWIRE_NEW_SECRET_KEY: nothing to rotate');
      throw new CredentialKeyMismatchError('FLEETWIRE_SECRET_KEY is not the key the database is encrypted with: give the current key as FLEETWIRE_SECRET_KEY');
    }
    const { rows } = await tx.query<{ workspace_id: string; id: string; credentials_ciphertext: string }>(
      'SELECT workspace_id, id, credentials_ciphertext FROM provider_connections ORDER BY workspace_id, id FOR UPDATE',
    );
    const report: RotationReport = { reencrypted: 0, unreadable: [], webhookSecrets: { reencrypted: 0, unreadable: [] } };
    for (const row of rows) {
      const ids = { workspaceId: row.workspace_id, connectionId: row.id };
      let plain: Record<string, unknown>;
      try {
        plain = decryptCredentials(oldKey, ids, row.credentials_ciphertext);
      } catch (error) {
        if (!(error instanceof CredentialsUnreadableError)) throw error;
        report.unreadable.push({ workspaceId: row.workspace_id, connectionId: row.id });
        continue;
      }
      await tx.query('UPDATE provider_connections SET credentials_ciphertext = $3 WHERE workspace_id = $1 AND id = $2', [row.workspace_id, row.id, encryptCredentials(newKey, ids, plain)]);
      report.reencrypted += 1;
    }
    for (const u of report.unreadable) {
      await tx.query('UPDATE provider_connections SET credentials_unreadable_at = COALESCE(credentials_unreadable_at, now()) WHERE workspace_id = $1 AND id = $2', [u.workspaceId, u.connectionId]);
    }
    // Webhook signing secrets live under the same key.
    const { rows: hooks } = await tx.query<{ workspace_id: string; id: string; secret_ciphertext: string }>(
      'SELECT workspace_id, id, secret_ciphertext FROM webhook_subscriptions ORDER BY workspace_id, id FOR UPDATE',
    );
    for (const hook of hooks) {
      const aad = webhookAad(hook.workspace_id, hook.id);
      let secret: string;
      try {
        secret = openText(oldKey, aad, hook.secret_ciphertext);
      } catch (error) {
        if (!(error instanceof CredentialsUnreadableError)) throw error;
        report.webhookSecrets.unreadable.push({ workspaceId: hook.workspace_id, webhookId: hook.id });
        continue;
      }
      await tx.query('UPDATE webhook_subscriptions SET secret_ciphertext = $3 WHERE workspace_id = $1 AND id = $2', [hook.workspace_id, hook.id, sealText(newKey, aad, secret)]);
      report.webhookSecrets.reencrypted += 1;
    }
    await tx.query(
      `INSERT INTO deployment_settings (name, value, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()`,
      [fingerprintSetting, keyFingerprint(newKey)],
    );
    return report;
  });
}
