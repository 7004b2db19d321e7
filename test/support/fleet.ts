/** Builders for the registry state and canonical updates tests need. */
import type { Database } from '../../src/core/db/database.ts';
import { createConnection } from '../../src/core/registry/connections.ts';
import { createVehicle } from '../../src/core/registry/vehicles.ts';
import { createWorkspace, type CutoverMode, type TelematicsPolicy } from '../../src/core/registry/workspaces.ts';

export interface TestFleet {
  workspaceId: string;
  connectionId: string;
  provider: string;
  vehicles: { id: string; externalId: string }[];
}

export async function createFleet(
  db: Database,
  secretKey: Buffer,
  options: { vehicles?: number; provider?: 'samsara' | 'traccar'; cutover?: CutoverMode; policy?: Partial<TelematicsPolicy>; name?: string } = {},
): Promise<TestFleet> {
  const provider = options.provider ?? 'samsara';
  const workspace = await createWorkspace(db, { name: options.name ?? 'Test depot', cutover: options.cutover, policy: options.policy });
  const connection = await createConnection(db, secretKey, workspace.id, {
    provider,
    transport: provider === 'samsara' ? 'poll' : 'stream',
    baseUrl: provider === 'samsara' ? undefined : 'http://127.0.0.1:1',
    credentials: provider === 'samsara' ? { apiToken: 'test-token' } : { token: 'test-token' },
  });
  const vehicles: TestFleet['vehicles'] = [];
  for (let i = 0; i < (options.vehicles ?? 1); i += 1) {
    const externalId = `dev-${i}`;
    const id = await createVehicle(db, workspace.id, { name: `Vehicle ${String(i).padStart(4, '0')}`, vin: `VIN${i}`, devices: [{ connectionId: connection.id, externalId }] });
    vehicles.push({ id, externalId });
  }
  return { workspaceId: workspace.id, connectionId: connection.id, provider, vehicles };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function update(
  fleet: TestFleet,
  readings: { signal: string; value: unknown; observedAt: string | number }[],
  options: { vehicle?: number; source?: 'poll' | 'stream' | 'legacy_poll'; externalDeviceId?: string; provider?: string; workspaceId?: string; connectionId?: string } = {},
) {
  return {
    workspaceId: options.workspaceId ?? fleet.workspaceId,
    provider: options.provider ?? fleet.provider,
    connectionId: options.connectionId ?? fleet.connectionId,
    externalDeviceId: options.externalDeviceId ?? fleet.vehicles[options.vehicle ?? 0]!.externalId,
    source: options.source ?? (fleet.provider === 'samsara' ? 'poll' : 'stream'),
    receivedAt: new Date().toISOString(),
    readings: readings.map((r) => ({ ...r, observedAt: typeof r.observedAt === 'number' ? iso(r.observedAt) : r.observedAt })),
  };
}

/** The snapshot rows of a vehicle, by signal. */
export async function snapshotOf(db: Database, vehicleId: string): Promise<Record<string, { value: unknown; observedAt: string }>> {
  const { rows } = await db.query<{ signal: string; value: unknown; observed_at: Date }>(
    'SELECT signal, value, observed_at FROM signal_snapshot WHERE vehicle_id = $1',
    [vehicleId],
  );
  return Object.fromEntries(rows.map((r) => [r.signal, { value: r.value, observedAt: r.observed_at.toISOString() }]));
}

export async function historyOf(db: Database, vehicleId: string, signal?: string): Promise<{ signal: string; value: unknown; observedAt: string }[]> {
  const { rows } = await db.query<{ signal: string; value: unknown; observed_at: Date }>(
    `SELECT signal, value, observed_at FROM signal_history WHERE vehicle_id = $1 AND ($2::text IS NULL OR signal = $2)
      ORDER BY signal, observed_at`,
    [vehicleId, signal ?? null],
  );
  return rows.map((r) => ({ signal: r.signal, value: r.value, observedAt: r.observed_at.toISOString() }));
}

export async function countRows(db: Database, table: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}
