/**
 * The NATS publisher's row (`nats_publishers`): one per stream, holding its cursor in the event log and the claim
 * that lets one core process at a time publish. Every write after the claim is fenced by it and by the cursor the
 * writer started from, so a process that lost its claim, or whose cursor was moved under it, changes nothing.
 */
import type { Sql } from '../db/database.ts';

/**
 * Claims (or renews) the stream's publishing for `holder` and answers its cursor; undefined while another process
 * holds an unexpired claim. The first claim of a stream makes its row, starting just before the oldest event kept.
 */
export async function claimNatsCursor(sql: Sql, claim: { stream: string; holder: string; claimMs: number }): Promise<number | undefined> {
  const { rows } = await sql.query<{ cursor: string }>(
    `INSERT INTO nats_publishers AS p (stream, cursor, claimed_by, claimed_until)
     SELECT $1, COALESCE((SELECT min(position) - 1 FROM events), (SELECT last_position FROM event_log_head)),
            $2, now() + $3 * interval '1 millisecond'
     ON CONFLICT (stream) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
      WHERE p.claimed_by = excluded.claimed_by OR p.claimed_by IS NULL OR p.claimed_until < now()
     RETURNING p.cursor::text`,
    [claim.stream, claim.holder, claim.claimMs],
  );
  return rows[0] ? Number(rows[0].cursor) : undefined;
}

/** Moves the cursor from `from` to `to` and renews the claim; false when the claim or the cursor is no longer ours. */
export async function advanceNatsCursor(
  sql: Sql,
  advance: { stream: string; holder: string; from: number; to: number; claimMs: number },
): Promise<boolean> {
  const { rowCount } = await sql.query(
    `UPDATE nats_publishers
        SET cursor = $4, claimed_until = now() + $5 * interval '1 millisecond', advanced_at = now()
      WHERE stream = $1 AND claimed_by = $2 AND cursor = $3`,
    [advance.stream, advance.holder, advance.from, advance.to, advance.claimMs],
  );
  return rowCount === 1;
}

/** Lets the claim go, so another process takes over at once. */
export async function releaseNatsCursor(sql: Sql, release: { stream: string; holder: string }): Promise<void> {
  await sql.query('UPDATE nats_publishers SET claimed_by = NULL, claimed_until = NULL WHERE stream = $1 AND claimed_by = $2', [release.stream, release.holder]);
}

/**
 * Positions between the stream's cursor and the log's head. Before the stream's first claim (NATS never reached) the
 * cursor is where that claim will start it.
 */
export async function natsBacklog(sql: Sql, stream: string): Promise<number> {
  const { rows } = await sql.query<{ backlog: string }>(
    `SELECT greatest(0, h.last_position - COALESCE((SELECT cursor FROM nats_publishers WHERE stream = $1),
                                                   (SELECT min(position) - 1 FROM events), h.last_position))::text AS backlog
       FROM event_log_head h`,
    [stream],
  );
  return Number(rows[0]?.backlog ?? 0);
}
