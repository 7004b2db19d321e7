/**
 * Provider connections: which provider account a workspace reads from, how (poll or stream), and its encrypted
 * credentials. Credentials go in through `createConnection`/`updateConnection` and come out, decrypted, only to
 * the processes that talk to providers: the poll runner (its poll plan) and the stream runtime (core's internal
 * stream API). No read model carries them.
 */
import { randomUUID } from 'node:crypto';
import { findProviderContract, providerContracts } from '../../providers/registry.ts';
import { baseUrlSchemesOf, optionsSchemaOf, type Transport } from '../../providers/provider.ts';
import type { Sql } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import { utcText } from '../read/sql-fragments.ts';
import { iso, isoOrNull } from '../time.ts';
import { encryptCredentials } from './credentials-cipher.ts';

/** How a poll connection has been doing (null for a stream connection, or one never polled). */
export interface PollState {
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastErrorAt: string | null;
  lastErrorClass: string | null;
  lastErrorMessage: string | null;
  consecutiveFailures: number;
  nextPollAt: string | null;
  rateLimitedUntil: string | null;
  authFailedAt: string | null;
}

/** What the stream process holding a stream connection last reported (null until one does). */
export interface StreamState {
  holder: string;
  connected: boolean;
  sockets: number;
  socketsOpen: number;
  lastMessageAt: string | null;
  lastHeartbeatAt: string | null;
  connectedSince: string | null;
  reconnects: number;
  readingsIn: number;
  delivered: number;
  coalesced: number;
  dropped: number;
  buffered: number;
  badFrames: number;
  /** Updates core refused and the stream process set aside after isolating them (see docs/OPERATIONS.md). */
  deadLettered: number;
  lastErrorClass: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  nextReconnectAt: string | null;
  reportedAt: string;
}

export interface Connection {
  id: string;
  workspaceId: string;
  provider: string;
  transport: Transport;
  label: string;
  baseUrl: string;
  enabled: boolean;
  /** Settings that are not secret, as the provider's contract defines them (defaults applied). */
  options: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /** When the stored credentials were found unreadable under this deployment's key; null while they are fine. */
  credentialsUnreadableAt: string | null;
  pollState: PollState | null;
  streamState: StreamState | null;
}

/** The `connection_poll_states` columns a poll state is read from, for a query that left-joins the table as `s`. */
export const pollStateColumns = `s.last_attempt_at, s.last_success_at, s.last_error_at, s.last_error_class, s.last_error_message,
         s.consecutive_failures, s.next_poll_at, s.rate_limited_until, s.auth_failed_at`;

/** A row holding `pollStateColumns` (all null when the connection has never been polled). */
export interface PollStateRow {
  last_attempt_at: Date | null;
  last_success_at: Date | null;
  last_error_at: Date | null;
  last_error_class: string | null;
  last_error_message: string | null;
  consecutive_failures: number | null;
  next_poll_at: Date | null;
  rate_limited_until: Date | null;
  auth_failed_at: Date | null;
}

/** The poll state of a `PollStateRow`, its times in the form `time` gives them; null for a connection never polled. */
export function readPollState<T>(row: PollStateRow, time: (at: Date | null) => T) {
  if (row.consecutive_failures === null) return null;
  return {
    lastAttemptAt: time(row.last_attempt_at),
    lastSuccessAt: time(row.last_success_at),
    lastErrorAt: time(row.last_error_at),
    lastErrorClass: row.last_error_class,
    lastErrorMessage: row.last_error_message,
    consecutiveFailures: row.consecutive_failures,
    nextPollAt: time(row.next_poll_at),
    rateLimitedUntil: time(row.rate_limited_until),
    authFailedAt: time(row.auth_failed_at),
  };
}

interface ConnectionRow extends PollStateRow {
  workspace_id: string;
  id: string;
  provider: string;
  transport: Transport;
  label: string;
  base_url: string;
  enabled: boolean;
  options: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  credentials_unreadable_at: Date | null;
  /** Built by jsonb_build_object: the bigint counters arrive as JSON numbers. */
  stream: StreamState | null;
}

const selectConnections = `
  SELECT c.workspace_id, c.id, c.provider, c.transport, c.label, c.base_url, c.enabled, c.options, c.created_at, c.updated_at, c.credentials_unreadable_at,
         ${pollStateColumns},
         (SELECT jsonb_build_object(
                   'holder', t.holder, 'connected', t.connected, 'sockets', t.sockets, 'socketsOpen', t.sockets_open,
                   'lastMessageAt', ${utcText('t.last_message_at')}, 'lastHeartbeatAt', ${utcText('t.last_heartbeat_at')},
                   'connectedSince', ${utcText('t.connected_since')}, 'reconnects', t.reconnects, 'readingsIn', t.readings_in,
                   'delivered', t.delivered, 'coalesced', t.coalesced, 'dropped', t.dropped, 'buffered', t.buffered,
                   'badFrames', t.bad_frames, 'deadLettered', t.dead_lettered, 'lastErrorClass', t.last_error_class, 'lastError', t.last_error,
                   'lastErrorAt', ${utcText('t.last_error_at')}, 'nextReconnectAt', ${utcText('t.next_reconnect_at')},
                   'reportedAt', ${utcText('t.reported_at')})
            FROM stream_connection_states t
           WHERE t.workspace_id = c.workspace_id AND t.connection_id = c.id) AS stream
    FROM provider_connections c
    LEFT JOIN connection_poll_states s ON s.workspace_id = c.workspace_id AND s.connection_id = c.id`;

function toConnection(row: ConnectionRow): Connection {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    provider: row.provider,
    transport: row.transport,
    label: row.label,
    baseUrl: row.base_url,
    enabled: row.enabled,
    options: row.options,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    credentialsUnreadableAt: isoOrNull(row.credentials_unreadable_at),
    pollState: readPollState(row, isoOrNull),
    streamState: row.stream,
  };
}

function checkBaseUrl(provider: string, baseUrl: string): string {
  const contract = findProviderContract(provider);
  if (!contract) throw unknownProvider(provider);
  const schemes = baseUrlSchemesOf(contract);
  const expected = `baseUrl must be an absolute ${schemes.map((s) => s.replace(/:$/, '')).join(', ')} URL`;
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new DomainError('invalid', 'invalid_base_url', expected);
  }
  if (!schemes.includes(url.protocol)) {
    throw new DomainError('invalid', 'invalid_base_url', expected);
  }
  if (url.username || url.password) {
    throw new DomainError('invalid', 'invalid_base_url', 'baseUrl must not carry credentials; put them in credentials');
  }
  return baseUrl.replace(/\/+$/, '');
}

function checkCredentials(provider: string, credentials: unknown): Record<string, unknown> {
  const contract = findProviderContract(provider);
  if (!contract) throw unknownProvider(provider);
  const parsed = contract.credentials.safeParse(credentials);
  if (!parsed.success) {
    // Name the fields, never echo their values.
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join('.') || '(root)'))].join(', ');
    throw new DomainError('invalid', 'invalid_credentials', `credentials for ${provider} are not valid at: ${fields}`);
  }
  return parsed.data;
}

/** A connection's options against its provider's contract: defaults applied; a bad field named, never echoed. */
export function checkOptions(provider: string, options: unknown): Record<string, unknown> {
  const contract = findProviderContract(provider);
  if (!contract) throw unknownProvider(provider);
  const parsed = optionsSchemaOf(contract).safeParse(options ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw new DomainError('invalid', 'invalid_options', `options for ${provider} are not valid: ${problems}`);
  }
  return parsed.data;
}

function unknownProvider(provider: string): DomainError {
  const known = providerContracts.map((c) => c.name).join(', ');
  return new DomainError('invalid', 'unknown_provider', `provider ${JSON.stringify(provider)} is not one of: ${known}`);
}

export interface NewConnection {
  provider: string;
  transport: Transport;
  baseUrl?: string | undefined;
  credentials: unknown;
  options?: unknown;
  label?: string | undefined;
  enabled?: boolean | undefined;
}

export async function createConnection(sql: Sql, secretKey: Buffer, workspaceId: string, input: NewConnection): Promise<Connection> {
  const contract = findProviderContract(input.provider);
  if (!contract) throw unknownProvider(input.provider);
  if (contract.transport !== input.transport) {
    throw new DomainError(
      'invalid',
      'unsupported_transport',
      `${contract.name} connections use transport ${contract.transport}, not ${input.transport}`,
    );
  }
  const baseUrlText = input.baseUrl ?? contract.defaultBaseUrl;
  if (baseUrlText === undefined) {
    throw new DomainError('invalid', 'invalid_base_url', `${contract.name} connections need a baseUrl (the server to connect to)`);
  }
  const baseUrl = checkBaseUrl(contract.name, baseUrlText);
  const credentials = checkCredentials(contract.name, input.credentials);
  const options = checkOptions(contract.name, input.options);
  const id = randomUUID();
  const ciphertext = encryptCredentials(secretKey, { workspaceId, connectionId: id }, credentials);
  await sql.query(
    `INSERT INTO provider_connections (workspace_id, id, provider, transport, label, base_url, credentials_ciphertext, enabled, options)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)`,
    [workspaceId, id, contract.name, contract.transport, input.label ?? contract.title, baseUrl, ciphertext, input.enabled ?? true, JSON.stringify(options)],
  );
  const created = await findConnection(sql, workspaceId, id);
  if (!created) throw notFound('workspace', workspaceId);
  return created;
}

export async function findConnection(sql: Sql, workspaceId: string, id: string): Promise<Connection | undefined> {
  const { rows } = await sql.query<ConnectionRow>(
    `${selectConnections} WHERE c.workspace_id = $1 AND c.id = $2`,
    [workspaceId, id],
  );
  return rows[0] && toConnection(rows[0]);
}

export async function listConnections(sql: Sql, workspaceId: string): Promise<Connection[]> {
  const { rows } = await sql.query<ConnectionRow>(
    `${selectConnections} WHERE c.workspace_id = $1 ORDER BY c.label, c.id`,
    [workspaceId],
  );
  return rows.map(toConnection);
}

export interface ConnectionChanges {
  label?: string | undefined;
  enabled?: boolean | undefined;
  baseUrl?: string | undefined;
  credentials?: unknown;
  /** Replaces the options whole (defaults applied to what is left out). */
  options?: unknown;
}

export async function updateConnection(
  sql: Sql,
  secretKey: Buffer,
  workspaceId: string,
  id: string,
  changes: ConnectionChanges,
): Promise<Connection> {
  // A connection's provider never changes, so reading it first (to check new credentials against its contract)
  // cannot race with anything; the change itself is one statement.
  const { rows: found } = await sql.query<{ provider: string }>('SELECT provider FROM provider_connections WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  if (!found[0]) throw notFound('connection', id);
  const ciphertext =
    changes.credentials === undefined
      ? null
      : encryptCredentials(secretKey, { workspaceId, connectionId: id }, checkCredentials(found[0].provider, changes.credentials));
  const options = changes.options === undefined ? null : JSON.stringify(checkOptions(found[0].provider, changes.options));
  // New credentials or a fixed configuration deserve a poll at once, not after the backoff of the old failures.
  const retryNow = ciphertext !== null || options !== null || changes.enabled === true || changes.baseUrl !== undefined;
  const { rows } = await sql.query<{ n: number }>(
    `WITH changed AS (
       UPDATE provider_connections
          SET label = COALESCE($3, label), enabled = COALESCE($4, enabled), base_url = COALESCE($5, base_url),
              credentials_ciphertext = COALESCE($6, credentials_ciphertext),
              credentials_unreadable_at = CASE WHEN $6::text IS NULL THEN credentials_unreadable_at END,
              options = COALESCE($8::jsonb, options), updated_at = now()
        WHERE workspace_id = $1 AND id = $2
        RETURNING workspace_id, id
     ), retried AS (
       UPDATE connection_poll_states s SET auth_failed_at = NULL, next_poll_at = NULL, consecutive_failures = 0
         FROM changed c
        WHERE $7::boolean AND s.workspace_id = c.workspace_id AND s.connection_id = c.id
     )
     SELECT count(*)::int AS n FROM changed`,
    [workspaceId, id, changes.label ?? null, changes.enabled ?? null, changes.baseUrl === undefined ? null : checkBaseUrl(found[0].provider, changes.baseUrl), ciphertext, retryNow, options],
  );
  if (rows[0]!.n === 0) throw notFound('connection', id);
  const updated = await findConnection(sql, workspaceId, id);
  if (!updated) throw notFound('connection', id);
  return updated;
}

/**
 * The connection's stored credentials cannot be decrypted with this deployment's key (a row restored from another
 * deployment, or damaged): its health says so until the credentials are entered again. Set once, and only by a
 * process whose key is the deployment's (`keyFingerprint` matches the one on record): a process left with an old
 * key after a rotation must not mark every connection it cannot read.
 */
export async function markCredentialsUnreadable(sql: Sql, workspaceId: string, id: string, keyFingerprint: string): Promise<void> {
  await sql.query(
    `UPDATE provider_connections SET credentials_unreadable_at = now()
      WHERE workspace_id = $1 AND id = $2 AND credentials_unreadable_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM deployment_settings WHERE name = 'credential_key_fingerprint' AND value <> $3)`,
    [workspaceId, id, keyFingerprint],
  );
}

/** Removes a connection and its device bindings; the vehicles and their history stay. */
export async function deleteConnection(sql: Sql, workspaceId: string, id: string): Promise<void> {
  const { rowCount } = await sql.query('DELETE FROM provider_connections WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  if (rowCount === 0) throw notFound('connection', id);
}
