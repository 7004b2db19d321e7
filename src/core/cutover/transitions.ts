/** The record of a workspace's cutover changes (cutover_transitions), newest first. */
import type { Sql } from '../db/database.ts';
import type { CutoverMode } from '../registry/workspaces.ts';

export interface CutoverTransition {
  id: string;
  at: string;
  actor: string;
  from: CutoverMode;
  to: CutoverMode;
  reason: string | null;
  forced: boolean;
  /** The parity a change to core was judged on (window, summary, gate); null for the others. */
  parity: unknown;
}

export async function listCutoverTransitions(sql: Sql, workspaceId: string, limit = 100): Promise<CutoverTransition[]> {
  const { rows } = await sql.query<{ id: string; at: Date; actor: string; from_mode: CutoverMode; to_mode: CutoverMode; reason: string | null; forced: boolean; parity: unknown }>(
    `SELECT id, at, actor, from_mode, to_mode, reason, forced, parity FROM cutover_transitions
      WHERE workspace_id = $1 ORDER BY at DESC, id LIMIT $2`,
    [workspaceId, limit],
  );
  return rows.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, from: r.from_mode, to: r.to_mode, reason: r.reason, forced: r.forced, parity: r.parity }));
}
