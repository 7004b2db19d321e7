/**
 * Which stream connections this process holds. Every refresh it pages through core's directory of the stream
 * connections it may hold (`GET /internal/v1/stream-connections?holder=`: its own and the free ones, no
 * credentials), takes its fair share of the free ones (every shared connection divided by the live stream
 * processes), renews the leases it holds and releases what it no longer should (`POST /internal/v1/stream-leases`,
 * whose answer carries what it needs to open each granted connection); then it opens what it was granted and closes
 * everything else. A connection an admin adds is open within one refresh; a dead process's leases expire and its
 * connections are taken over.
 */
import type { StreamDirectoryEntry } from '../canonical/stream-api.ts';

export interface DirectoryPlan {
  wanted: string[];
  release: string[];
}

/**
 * What to ask for: everything held that is still in the directory, plus free connections up to the fair share.
 * `entries` are the connections this process may hold (its own and the free ones); `total` counts every shared
 * connection, held by anyone.
 */
export function planLeases(
  holder: string,
  entries: readonly StreamDirectoryEntry[],
  total: number,
  liveHolders: readonly string[],
  held: ReadonlySet<string>,
): DirectoryPlan {
  const holders = new Set<string>([holder, ...liveHolders]);
  const share = Math.ceil(Math.max(total, entries.length) / holders.size);
  const ours = entries.filter((e) => held.has(e.id) || e.lease?.holder === holder).map((e) => e.id);
  // Holding more than the share while another process is alive: hand the excess back, it will take it.
  const keep = ours.slice(0, share);
  const free = entries.filter((e) => !held.has(e.id) && e.lease === null).map((e) => e.id);
  const take = free.slice(0, Math.max(0, share - keep.length));
  const release = [...held].filter((id) => !keep.includes(id));
  return { wanted: [...keep, ...take], release };
}
