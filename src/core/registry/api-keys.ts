/**
 * Workspace API keys: read access to one workspace. A key is `fwk_<workspace><key id>_<secret>`; only the
 * SHA-256 of the secret is stored, and the key is shown once, when it is created. The workspace id inside the
 * key keeps the lookup on the workspace-leading primary key.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Sql } from '../db/database.ts';
import { notFound } from '../errors.ts';
import { iso, isoOrNull } from '../time.ts';

export interface ApiKey {
  id: string;
  workspaceId: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

interface ApiKeyRow {
  workspace_id: string;
  id: string;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    createdAt: iso(row.created_at),
    lastUsedAt: isoOrNull(row.last_used_at),
    revokedAt: isoOrNull(row.revoked_at),
  };
}

const hex = (uuid: string) => uuid.replace(/-/g, '');
const uuidFromHex = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

export function looksLikeApiKey(token: string): boolean {
  return /^fwk_[0-9a-f]{64}_[A-Za-z0-9_-]{43}$/.test(token);
}

export async function createApiKey(sql: Sql, workspaceId: string, name: string): Promise<ApiKey & { key: string }> {
  const id = randomUUID();
  const secret = randomBytes(32).toString('base64url');
  const { rows } = await sql.query<ApiKeyRow>(
    `INSERT INTO api_keys (workspace_id, id, name, secret_hash)
     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)
     RETURNING workspace_id, id, name, created_at, last_used_at, revoked_at`,
    [workspaceId, id, name, hashSecret(secret)],
  );
  const row = rows[0];
  if (!row) throw notFound('workspace', workspaceId);
  return { ...toApiKey(row), key: `fwk_${hex(workspaceId)}${hex(id)}_${secret}` };
}

export async function listApiKeys(sql: Sql, workspaceId: string): Promise<ApiKey[]> {
  const { rows } = await sql.query<ApiKeyRow>(
    `SELECT workspace_id, id, name, created_at, last_used_at, revoked_at
       FROM api_keys WHERE workspace_id = $1 ORDER BY created_at, id`,
    [workspaceId],
  );
  return rows.map(toApiKey);
}

export async function revokeApiKey(sql: Sql, workspaceId: string, id: string): Promise<void> {
  const { rowCount } = await sql.query(
    'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE workspace_id = $1 AND id = $2',
    [workspaceId, id],
  );
  if (rowCount === 0) throw notFound('api_key', id);
}

/**
 * The workspace a key grants, or undefined for an unknown, revoked or wrong key. The hash comparison is
 * constant-time; `last_used_at` is refreshed at most once a minute so reads do not become writes.
 */
export async function verifyApiKey(sql: Sql, token: string): Promise<{ workspaceId: string; keyId: string } | undefined> {
  if (!looksLikeApiKey(token)) return undefined;
  const workspaceId = uuidFromHex(token.slice(4, 36));
  const keyId = uuidFromHex(token.slice(36, 68));
  const secret = token.slice(69);
  const { rows } = await sql.query<{ secret_hash: Buffer; revoked_at: Date | null; stale_use: boolean }>(
    `SELECT secret_hash, revoked_at, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale_use
       FROM api_keys WHERE workspace_id = $1 AND id = $2`,
    [workspaceId, keyId],
  );
  const row = rows[0];
  const expected = row ? Buffer.from(row.secret_hash) : Buffer.alloc(32);
  const matches = timingSafeEqual(expected, hashSecret(secret));
  if (!row || !matches || row.revoked_at !== null) return undefined;
  if (row.stale_use) {
    await sql.query('UPDATE api_keys SET last_used_at = now() WHERE workspace_id = $1 AND id = $2', [workspaceId, keyId]);
  }
  return { workspaceId, keyId };
}
