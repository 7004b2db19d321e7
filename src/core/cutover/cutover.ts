/**
 * Changing who owns a workspace's polling (docs/OPERATIONS.md, "Migrating a workspace"): `legacy` -> `shadow` ->
 * `core`, and back. Going to core from any other mode passes the gate: parity over the policy's window must meet its
 * thresholds (parity.ts), or the request says `force` with a reason, which is recorded. Every change records who,
 * when, from, to and why, and is an event (registry/workspaces.ts `putCutover`). A rollback, core to legacy (or to
 * shadow), is one call: the legacy poller's updates are accepted from that moment; core's poll runs already going
 * still commit their pages as owned readings (ingest-batch.ts), and then core runs one closing poll from its committed
 * cursors (polling/poll-runner.ts), so what the legacy poller read and was refused before the rollback is not lost.
 */
import type { Database } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import { getWorkspace, putCutover, type CutoverMode, type Workspace } from '../registry/workspaces.ts';
import { loadParity } from './parity.ts';

export interface CutoverRequest {
  mode: CutoverMode;
  reason?: string | undefined;
  force?: boolean | undefined;
  /** Who asks, in their words; `principal` (the credential) when absent. */
  actor?: string | undefined;
}

/** Refused: parity does not meet the gate. `reasons` are the shortfalls. */
export class CutoverGateError extends DomainError {
  constructor(reasons: readonly string[]) {
    super('conflict', 'parity_not_met', `parity does not meet the cutover gate: ${reasons.join('; ')}. Stay in shadow until it does, or force it with a reason`, reasons);
  }
}

export async function changeCutover(db: Database, workspaceId: string, request: CutoverRequest, principal: string, nowMs: number): Promise<Workspace> {
  if (request.force && !request.reason) throw new DomainError('invalid', 'reason_required', 'a forced cutover needs a reason, which is recorded with it');
  const actor = request.actor ?? principal;
  const change = { actor, reason: request.reason ?? null, forced: false };
  if (request.mode !== 'core') return putCutover(db, workspaceId, request.mode, change);
  const { policy } = await getWorkspace(db, workspaceId);
  return putCutover(db, workspaceId, 'core', change, async (tx) => {
    // Judged in the transaction that holds the cutover: no batch of either poller lands between the verdict and it.
    const parity = await loadParity(tx, workspaceId, policy.cutoverGate, policy.cutoverGate.windowHours, nowMs);
    if (!parity.gate.met && !request.force) throw new CutoverGateError(parity.gate.reasons);
    return { ...change, forced: !parity.gate.met, parity: { window: parity.window, summary: parity.summary, gate: parity.gate } };
  });
}
