/**
 * An operator's backfill request, checked before it becomes a job: the connection exists and its provider has a
 * history path, the period is in order, not longer than the configured bound and not older than what the provider
 * keeps, and the devices named are bound to the connection. Each refusal has its own stable code (docs/API.md).
 */
import type { HistoryAdapter } from '../../providers/history-adapter.ts';
import { optionsSchemaOf } from '../../providers/provider.ts';
import type { Sql } from '../db/database.ts';
import { DomainError, notFound } from '../errors.ts';
import { listBoundDevices } from '../polling/poll-store.ts';
import { enqueueBackfill, windowCount, type BackfillJobView } from './backfill-store.ts';

export interface BackfillRequest {
  from: string;
  to?: string | undefined;
  devices?: readonly string[] | undefined;
}

export interface BackfillLimits {
  /** The longest period one request may cover. */
  maxRangeMs: number;
}

/** `to` may lie this far ahead of the server's clock (clock skew between the caller and core). */
const futureAllowanceMs = 60_000;
const dayMs = 86_400_000;

const invalid = (code: string, detail: string) => new DomainError('invalid', code, detail);

export async function requestBackfill(
  sql: Sql,
  workspaceId: string,
  connectionId: string,
  request: BackfillRequest,
  context: { nowMs: number; limits: BackfillLimits; adapters: ReadonlyMap<string, HistoryAdapter> },
): Promise<{ job: BackfillJobView; created: boolean }> {
  const { rows } = await sql.query<{ provider: string; options: unknown }>(
    'SELECT provider, options FROM provider_connections WHERE workspace_id = $1 AND id = $2',
    [workspaceId, connectionId],
  );
  const connection = rows[0];
  if (!connection) throw notFound('connection', connectionId);
  const adapter = context.adapters.get(connection.provider);
  if (!adapter) {
    throw invalid('backfill_unsupported', `provider ${connection.provider} has no history path: what it sent before a device was bound cannot be fetched again`);
  }

  const fromMs = Date.parse(request.from);
  const toMs = request.to === undefined ? context.nowMs : Date.parse(request.to);
  if (fromMs > toMs) throw invalid('invalid_backfill_range', `from (${request.from}) is after to (${new Date(toMs).toISOString()})`);
  if (toMs > context.nowMs + futureAllowanceMs) throw invalid('invalid_backfill_range', 'to is in the future: a provider holds nothing yet for it');
  if (toMs - fromMs > context.limits.maxRangeMs) {
    throw invalid('backfill_range_too_long', `the period is longer than ${Math.round(context.limits.maxRangeMs / dayMs)} days; split it into several requests`);
  }
  const options = optionsSchemaOf(adapter.contract).safeParse(connection.options ?? {});
  const keepsDays = adapter.keepsDays(options.success ? options.data : {});
  if (keepsDays !== undefined && fromMs < context.nowMs - keepsDays * dayMs) {
    throw invalid(
      'backfill_beyond_provider_history',
      `from is older than the ${keepsDays} days of history this connection's provider keeps (its historyDays option says otherwise)`,
    );
  }

  let devices: string[] | null = null;
  if (request.devices && request.devices.length > 0) {
    devices = [...new Set(request.devices)].sort();
    const bound = new Set(await listBoundDevices(sql, workspaceId, connectionId));
    const unbound = devices.filter((device) => !bound.has(device));
    if (unbound.length > 0) {
      throw invalid('device_not_bound', `device ${unbound.slice(0, 3).join(', ')} is not bound on this connection: bind it first (binding starts its own backfill)`);
    }
  }
  return enqueueBackfill(sql, {
    workspaceId,
    connectionId,
    devices,
    fromMs,
    toMs,
    toRequested: request.to !== undefined,
    trigger: 'request',
    status: 'queued',
    windowsTotal: windowCount(fromMs, toMs, adapter.windowMs),
  });
}
