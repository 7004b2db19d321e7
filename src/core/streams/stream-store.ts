/**
 * Core's side of the stream runtime: the stream connections to hold (with their decrypted credentials, for the
 * service only), leases that give each connection to exactly one stream process, and the state those processes
 * report. A live, heartbeating connection confirms its vehicles are in sync (DESIGN §8).
 */
import type { StreamConnectionGrant, StreamDirectoryEntry, StreamStatus } from '../../canonical/stream-api.ts';
import type { Database, Sql } from '../db/database.ts';
import { markCredentialsUnreadable } from '../registry/connections.ts';
import { keyFingerprint } from '../registry/credential-key.ts';
import { CredentialsUnreadableError, decryptCredentials } from '../registry/credentials-cipher.ts';

/** Enabled stream connections of workspaces with telematics enabled, with credentials that can be read. */
const sharedFrom = `
   FROM provider_connections c
   JOIN telematics_policies p ON p.workspace_id = c.workspace_id AND p.enabled`;
const sharedWhere = `c.transport = 'stream' AND c.enabled AND c.credentials_unreadable_at IS NULL`;

/**
 * One page of the connections `holder` may hold: those it holds and those nobody holds (no lease, or an expired
 * one), in id order, without credentials. Also the number of connections shared overall, for the fair share.
 */
export async function listStreamDirectory(
  sql: Sql,
  query: { holder: string; after?: string | undefined; limit: number },
): Promise<{ items: StreamDirectoryEntry[]; nextCursor: string | null; total: number }> {
  const { rows } = await sql.query<{ workspace_id: string; id: string; provider: string; holder: string | null; expires_at: Date | null }>(
    `SELECT c.workspace_id, c.id, c.provider, l.holder, l.expires_at
     ${sharedFrom}
       LEFT JOIN stream_leases l ON l.workspace_id = c.workspace_id AND l.connection_id = c.id AND l.expires_at > now()
      WHERE ${sharedWhere}
        AND ($2::uuid IS NULL OR c.id > $2::uuid)
        AND (l.holder IS NULL OR l.holder = $1)
      ORDER BY c.id
      LIMIT $3`,
    [query.holder, query.after ?? null, query.limit + 1],
  );
  const { rows: counted } = await sql.query<{ n: number }>(`SELECT count(*)::int AS n ${sharedFrom} WHERE ${sharedWhere}`);
  const page = rows.slice(0, query.limit);
  return {
    items: page.map((row) => ({
      id: row.id,
      workspaceId: row.workspace_id,
      provider: row.provider,
      lease: row.holder && row.expires_at ? { holder: row.holder, expiresAt: row.expires_at.toISOString() } : null,
    })),
    nextCursor: rows.length > query.limit ? page[page.length - 1]!.id : null,
    total: counted[0]!.n,
  };
}

/**
 * The grants of connections `holder` holds: base URL, decrypted credentials, bound devices and a revision. A
 * connection whose credentials cannot be decrypted is left out and answered in `unreadable`; its lease is released
 * and the connection marked, so its health says why and no process keeps trying. One bad row never affects another.
 */
async function grantsOf(sql: Sql, secretKey: Buffer, holder: string, ids: readonly string[]): Promise<{ granted: StreamConnectionGrant[]; unreadable: string[] }> {
  if (ids.length === 0) return { granted: [], unreadable: [] };
  const { rows } = await sql.query<{
    workspace_id: string;
    id: string;
    provider: string;
    base_url: string;
    credentials_ciphertext: string;
    options: Record<string, unknown>;
    updated_at: Date;
    devices: string[] | null;
  }>(
    `SELECT c.workspace_id, c.id, c.provider, c.base_url, c.credentials_ciphertext, c.options, c.updated_at,
            (SELECT array_agg(d.external_id ORDER BY d.external_id)
               FROM device_bindings d
               JOIN vehicles v ON v.workspace_id = d.workspace_id AND v.id = d.vehicle_id AND v.active
              WHERE d.workspace_id = c.workspace_id AND d.connection_id = c.id) AS devices
       FROM provider_connections c
      WHERE c.id = ANY($1::uuid[])
      ORDER BY c.id`,
    [ids],
  );
  const granted: StreamConnectionGrant[] = [];
  const unreadable: { workspaceId: string; id: string }[] = [];
  for (const row of rows) {
    let credentials: Record<string, unknown>;
    try {
      credentials = decryptCredentials(secretKey, { workspaceId: row.workspace_id, connectionId: row.id }, row.credentials_ciphertext);
    } catch (error) {
      if (!(error instanceof CredentialsUnreadableError)) throw error;
      unreadable.push({ workspaceId: row.workspace_id, id: row.id });
      continue;
    }
    const devices = row.devices ?? [];
    granted.push({
      id: row.id,
      workspaceId: row.workspace_id,
      provider: row.provider,
      baseUrl: row.base_url,
      credentials,
      options: row.options,
      boundDevices: devices,
      revision: hashOf(`${row.updated_at.getTime()}|${row.base_url}|${JSON.stringify(row.options)}|${devices.join('\n')}`),
    });
  }
  for (const { workspaceId, id } of unreadable) {
    await markCredentialsUnreadable(sql, workspaceId, id, keyFingerprint(secretKey));
    await sql.query('DELETE FROM stream_leases WHERE workspace_id = $1 AND connection_id = $2 AND holder = $3', [workspaceId, id, holder]);
  }
  return { granted, unreadable: unreadable.map((u) => u.id) };
}

/** Stream processes that asked for leases within `withinSeconds`; forgets the long gone. */
export async function liveStreamHolders(sql: Sql, withinSeconds: number): Promise<string[]> {
  const { rows } = await sql.query<{ holder: string }>(
    'SELECT holder FROM stream_holders WHERE seen_at > now() - make_interval(secs => $1) ORDER BY holder',
    [withinSeconds],
  );
  return rows.map((row) => row.holder);
}

function hashOf(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

/**
 * Grants `holder` the connections it asks for that nobody else holds (or whose lease expired), renews the ones it
 * holds, and releases the ones it gives up, in one transaction; answers what it holds now with what it needs to
 * open each. A lease moves only when it is free.
 */
export async function acquireStreamLeases(
  db: Database,
  secretKey: Buffer,
  request: { holder: string; wanted: readonly string[]; release: readonly string[]; leaving: boolean },
  ttlSeconds: number,
): Promise<{ granted: StreamConnectionGrant[]; unreadable: string[]; gone: string[] }> {
  const { holder, wanted, release } = request;
  return db.transaction(async (tx) => {
    if (request.leaving) {
      await tx.query('DELETE FROM stream_holders WHERE holder = $1', [holder]);
      await tx.query('DELETE FROM stream_leases WHERE holder = $1', [holder]);
      return { granted: [], unreadable: [], gone: [] };
    }
    const gone = await deletedConnections(tx, [...wanted, ...release]);
    await tx.query(
      `INSERT INTO stream_holders (holder, seen_at) VALUES ($1, now())
       ON CONFLICT (holder) DO UPDATE SET seen_at = now()`,
      [holder],
    );
    // Processes gone for a day are forgotten.
    await tx.query(`DELETE FROM stream_holders WHERE seen_at < now() - interval '1 day'`);
    if (release.length > 0) {
      await tx.query('DELETE FROM stream_leases WHERE holder = $1 AND connection_id = ANY($2::uuid[])', [holder, release]);
    }
    if (wanted.length === 0) return { granted: [], unreadable: [], gone };
    const { rows } = await tx.query<{ connection_id: string }>(
      `INSERT INTO stream_leases AS l (workspace_id, connection_id, holder, expires_at)
       SELECT c.workspace_id, c.id, $1, now() + make_interval(secs => $3)
       ${sharedFrom}
        WHERE c.id = ANY($2::uuid[]) AND ${sharedWhere}
       ON CONFLICT (workspace_id, connection_id) DO UPDATE
          SET holder = excluded.holder, expires_at = excluded.expires_at,
              acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END
        WHERE l.holder = excluded.holder OR l.expires_at <= now()
       RETURNING connection_id`,
      [holder, wanted, ttlSeconds],
    );
    return { ...(await grantsOf(tx, secretKey, holder, rows.map((row) => row.connection_id))), gone };
  });
}

/**
 * Of the connections a stream process asked about, those that no longer exist: deleted, alone or with their
 * workspace. A process still holding one learns it is gone, not merely handed on or disabled.
 */
async function deletedConnections(sql: Sql, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await sql.query<{ id: string }>(
    `SELECT k.id FROM unnest($1::uuid[]) AS k(id)
      WHERE NOT EXISTS (SELECT 1 FROM provider_connections c WHERE c.id = k.id)
      ORDER BY k.id`,
    [[...new Set(ids)]],
  );
  return rows.map((row) => row.id);
}

/**
 * Stores what a stream process reports for the connections it holds a live lease on (a report on any other is
 * ignored: the process was cut off and another holds it now), and confirms every connection with a socket open and
 * a heartbeat in the last `liveWithinSeconds`: its vehicles count as synced, but for the devices whose own socket
 * it reports down (`devices_down`, which the sync rule leaves out; see `vehicleSyncJoin`). One statement; no vehicle
 * row is written.
 */
/** A report as a stream process sends it; one from a version that reports no `devicesDown` has none down. */
type ReportedStatus = Omit<StreamStatus, 'devicesDown'> & { devicesDown?: StreamStatus['devicesDown'] };

export async function recordStreamStatus(sql: Sql, holder: string, reports: readonly ReportedStatus[], liveWithinSeconds: number): Promise<number> {
  if (reports.length === 0) return 0;
  const { rows } = await sql.query<{ connection_id: string }>(
    `WITH reported AS (
     INSERT INTO stream_connection_states AS s
            (workspace_id, connection_id, holder, connected, sockets, sockets_open, last_message_at, last_heartbeat_at,
             connected_since, reconnects, readings_in, delivered, coalesced, dropped, buffered, bad_frames, dead_lettered,
             last_error_class, last_error, last_error_at, next_reconnect_at, devices_down, reported_at)
     SELECT l.workspace_id, l.connection_id, $1, r.connected, r.sockets, r.sockets_open, r.last_message_at, r.last_heartbeat_at,
            r.connected_since, r.reconnects, r.readings_in, r.delivered, r.coalesced, r.dropped, r.buffered, r.bad_frames,
            r.dead_lettered, r.last_error_class, r.last_error, r.last_error_at, r.next_reconnect_at, r.devices_down, now()
       FROM jsonb_to_recordset($2::jsonb) AS r(
              connection_id uuid, connected boolean, sockets int, sockets_open int, last_message_at timestamptz,
              last_heartbeat_at timestamptz, connected_since timestamptz, reconnects bigint, readings_in bigint,
              delivered bigint, coalesced bigint, dropped bigint, buffered int, bad_frames bigint, dead_lettered bigint, last_error_class text,
              last_error text, last_error_at timestamptz, next_reconnect_at timestamptz, devices_down jsonb)
       JOIN stream_leases l ON l.connection_id = r.connection_id AND l.holder = $1 AND l.expires_at > now()
     ON CONFLICT (workspace_id, connection_id) DO UPDATE
        SET holder = excluded.holder, connected = excluded.connected, sockets = excluded.sockets,
            sockets_open = excluded.sockets_open, last_message_at = excluded.last_message_at,
            last_heartbeat_at = excluded.last_heartbeat_at, connected_since = excluded.connected_since,
            reconnects = excluded.reconnects, readings_in = excluded.readings_in, delivered = excluded.delivered,
            coalesced = excluded.coalesced, dropped = excluded.dropped, buffered = excluded.buffered,
            bad_frames = excluded.bad_frames, dead_lettered = excluded.dead_lettered, last_error_class = excluded.last_error_class,
            last_error = excluded.last_error, last_error_at = excluded.last_error_at,
            next_reconnect_at = excluded.next_reconnect_at, devices_down = excluded.devices_down, reported_at = now()
     RETURNING workspace_id, connection_id, connected, sockets_open, last_heartbeat_at
     ), confirmed AS (
       INSERT INTO connection_sync_marks (workspace_id, connection_id, confirmed_at)
       SELECT workspace_id, connection_id, now() FROM reported
        WHERE (connected OR sockets_open > 0) AND last_heartbeat_at > now() - make_interval(secs => $3)
       ON CONFLICT (workspace_id, connection_id) DO UPDATE SET confirmed_at = excluded.confirmed_at
     )
     SELECT connection_id FROM reported`,
    [
      holder,
      JSON.stringify(
        reports.map((r) => ({
          connection_id: r.connectionId,
          connected: r.connected,
          sockets: r.sockets,
          sockets_open: r.socketsOpen,
          last_message_at: r.lastMessageAt,
          last_heartbeat_at: r.lastHeartbeatAt,
          connected_since: r.connectedSince,
          reconnects: r.reconnects,
          readings_in: r.readingsIn,
          delivered: r.delivered,
          coalesced: r.coalesced,
          dropped: r.dropped,
          buffered: r.buffered,
          bad_frames: r.badFrames,
          dead_lettered: r.deadLettered,
          last_error_class: r.lastErrorClass,
          last_error: r.lastError,
          last_error_at: r.lastErrorAt,
          next_reconnect_at: r.nextReconnectAt,
          devices_down: r.devicesDown ?? {},
        })),
      ),
      liveWithinSeconds,
    ],
  );
  return rows.length;
}
