/**
 * The child process of the embedded-default SIGKILL test (stream-and-embedded.test.ts): opens PGlite on the data
 * dir given as its argument, migrates, and ingests numbered batches through `ingestBatch` until it is killed,
 * printing `committed <n>` right after each batch's transaction committed. A data dir that already holds the
 * depot (a previous child was killed) is resumed: same fleet, next batch number after the newest one stored.
 *
 * Arguments: the data dir, the base of observed times (ms), and the fleet size (on the first start).
 * Lines it prints: `ready {"workspaceId","firstBatch","baseMs"}` once, then `committed <n>` per batch, or
 * `error <message>` before it exits non-zero.
 */
import { randomBytes } from 'node:crypto';
import { openPglite, type Database } from '../../src/core/db/database.ts';
import { migrate } from '../../src/core/db/migrate.ts';
import { ingestBatch } from '../../src/core/ingest/ingest-batch.ts';
import { createFleet, type TestFleet } from '../support/fleet.ts';
import { loadTestFleet, numberedBatch, readingsPerUpdate, storedBatches } from '../support/numbered-batches.ts';

const depotName = 'Kill depot';

async function openFleet(db: Database, vehicles: number): Promise<TestFleet> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM workspaces WHERE name = $1', [depotName]);
  return rows[0] ? loadTestFleet(db, rows[0].id) : createFleet(db, randomBytes(32), { vehicles, provider: 'traccar', name: depotName });
}

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  const baseMs = Number(process.argv[3]);
  const vehicles = Number(process.argv[4] ?? 20);
  if (!dataDir || !Number.isFinite(baseMs) || !(vehicles > 0)) throw new Error('usage: pglite-ingest-child.ts <dataDir> <baseMs> [vehicles]');
  const db = await openPglite({ dataDir });
  await migrate(db);
  const fleet = await openFleet(db, vehicles);
  const stored = await storedBatches(db, fleet.workspaceId, baseMs);
  const firstBatch = Math.max(0, ...stored.keys()) + 1;
  process.stdout.write(`ready ${JSON.stringify({ workspaceId: fleet.workspaceId, firstBatch, baseMs })}\n`);
  const perBatch = fleet.vehicles.length * readingsPerUpdate;
  for (let n = firstBatch; n < firstBatch + 100_000; n += 1) {
    const outcome = await ingestBatch(db, numberedBatch(fleet, baseMs, n));
    const stored = outcome.counts.accepted + outcome.counts.late;
    if (stored !== perBatch) throw new Error(`batch ${n}: ${stored} of ${perBatch} readings stored (${JSON.stringify(outcome.counts)})`);
    process.stdout.write(`committed ${n}\n`);
  }
}

main().catch((error: unknown) => {
  process.stdout.write(`error ${(error as Error).message}\n`);
  process.exit(1);
});
