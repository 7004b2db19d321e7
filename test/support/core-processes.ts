/** `fleetwire core` as separate processes on one PostgreSQL schema, for tests of several core processes at once. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresUrl, withSearchPath, type TestDatabase } from './database.ts';
import { freePort, startFleetwire, type Running } from './processes.ts';
import { until } from './stream.ts';

export interface CoreProcess {
  name: string;
  url: string;
  process: Running;
}

/**
 * Starts a core process on `database` (its schema and job queue), with the external scheduler and the given
 * secrets; `started` gets it at once, so the caller stops it whatever happens next. Resolves once /readyz is 200.
 */
export async function startCoreProcess(
  name: string,
  database: TestDatabase,
  secrets: { adminToken: string; serviceToken: string; secretKey: Buffer },
  started: CoreProcess[],
  env: Record<string, string> = {},
): Promise<CoreProcess> {
  const port = await freePort();
  const process = startFleetwire(['core'], {
    DATABASE_URL: withSearchPath(postgresUrl, database.schema!),
    FLEETWIRE_JOB_SCHEMA: database.jobSchema,
    FLEETWIRE_SCHEDULER: 'external',
    FLEETWIRE_PORT: String(port),
    FLEETWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), `fleetwire-${name}-`)),
    FLEETWIRE_ADMIN_TOKEN: secrets.adminToken,
    FLEETWIRE_SERVICE_TOKEN: secrets.serviceToken,
    FLEETWIRE_SECRET_KEY: secrets.secretKey.toString('hex'),
    FLEETWIRE_LOG_LEVEL: 'warn',
    ...env,
  });
  const core = { name, url: `http://127.0.0.1:${port}`, process };
  started.push(core);
  await until(`core ${name} to be ready`, async () => {
    if (process.child.exitCode !== null) throw new Error(`core ${name} exited:\n${process.output()}`);
    return fetch(`${core.url}/readyz`).then((r) => r.ok, () => false);
  }, 60_000);
  return core;
}

/** Posts an EventBridge scheduled event for one workspace to a core process. */
export async function postScheduledEvent(url: string, serviceToken: string, workspaceId: string, id: string = randomUUID()) {
  const response = await fetch(`${url}/internal/v1/scheduled-events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ version: '0', id, 'detail-type': 'Scheduled Event', source: 'aws.scheduler', time: new Date().toISOString(), detail: { workspaceId } }),
  });
  return (await response.json()) as { duplicate: boolean; workspacesDue: number };
}
