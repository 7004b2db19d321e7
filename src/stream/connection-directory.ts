/**
 * Which stream connections this process holds. Every few seconds it asks core for the stream connections
 * (`GET /internal/v1/stream-connections`), takes its fair share of those nobody holds (the connections divided
 * by the live stream processes), renews the leases it holds and releases what it no longer should
 * (`POST /internal/v1/stream-leases`); then it opens what it was granted and closes everything else. A connection
 * an admin adds is open within one refresh; a dead process's leases expire and its connections are taken over.
 */
import type { StreamConnectionGrant } from '../canonical/stream-api.ts';

export interface DirectoryPlan {
  wanted: string[];
  release: string[];
}

/**
 * What to ask for: everything held that still exists, plus free connections up to the fair share. Free means no
 * live lease, or a lease of ours (after a restart under the same holder name).
 */
export function planLeases(
  holder: string,
  items: readonly StreamConnectionGrant[],
  liveHolders: readonly string[],
  held: ReadonlySet<string>,
): DirectoryPlan {
  const holders = new Set<string>([holder, ...liveHolders]);
  for (const item of items) if (item.lease) holders.add(item.lease.holder);
  const share = Math.ceil(items.length / holders.size);
  const ours = items.filter((item) => held.has(item.id) && (!item.lease || item.lease.holder === holder)).map((item) => item.id);
  // Holding more than the share while another process is alive: hand the excess back, it will take it.
  const keep = ours.slice(0, share);
  const free = items.filter((item) => !held.has(item.id) && (!item.lease || item.lease.holder === holder)).map((item) => item.id);
  const take = free.slice(0, Math.max(0, share - keep.length));
  const release = [...held].filter((id) => !keep.includes(id));
  return { wanted: [...keep, ...take], release };
}
