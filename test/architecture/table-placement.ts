/**
 * Where each table goes on a distributed PostgreSQL (Citus), as docs/ARCHITECTURE.md ("Scale-out") tells it: every
 * table is distributed by `workspace_id` and co-located, but for the tables below. The architecture tests hold the
 * schema and the queries to this list, and the list to the document's table.
 */

export type Placement = 'distributed' | 'reference' | 'coordinator-local';

export interface GlobalTable {
  placement: Placement;
  /** The column it is distributed by, for a distributed table keyed otherwise than by `workspace_id`. */
  distributedBy?: string;
  reason: string;
}

/** The tables whose keys do not lead with `workspace_id`, each with why. Everything else is distributed by it. */
export const globalTables: Readonly<Record<string, GlobalTable>> = {
  workspaces: {
    placement: 'distributed',
    distributedBy: 'id',
    reason: 'its id is the workspace id: distributed by it, co-located with every tenant table that references it',
  },
  deployment_settings: {
    placement: 'reference',
    reason: 'facts of the whole deployment (the credential key fingerprint), written at first start and key rotation only, read inside tenant statements',
  },
  event_log_head: {
    placement: 'coordinator-local',
    reason: 'the one counter of global event positions, written by every unit of work that writes events',
  },
  nats_publishers: {
    placement: 'coordinator-local',
    reason: "one row per JetStream stream: the publisher's cursor over every workspace's events and its claim",
  },
  scheduled_events: {
    placement: 'coordinator-local',
    reason: 'scheduler event ids, for idempotency; an event names no workspace, or many',
  },
  schema_migrations: {
    placement: 'coordinator-local',
    reason: "the migrator's record of the schema",
  },
  stream_holders: {
    placement: 'coordinator-local',
    reason: 'the live stream processes, each spanning many workspaces; written on every heartbeat',
  },
};

/** The column a table is distributed by, or undefined for a reference or coordinator-local table. */
export function distributionColumn(table: string): string | undefined {
  const global = globalTables[table];
  if (!global) return 'workspace_id';
  return global.placement === 'distributed' ? global.distributedBy : undefined;
}
