/**
 * The demo's workspaces, made once and brought up to date on every start: "North depot" reads its vans and buses
 * from Samsara (polled) and a Traccar shuttle fleet (streamed); "South depot" reads Geotab (polled), a few Teslas
 * through Tessie (streamed) and, when a local MQTT broker runs, a few more through a fleet-telemetry server's MQTT
 * dispatcher (streamed). A couple of vehicles per polled provider are left unbound, so the
 * rejections view shows `unknown_device` from the first minute. A read key per workspace is made once and kept in
 * the data dir, so the banner can show it after a restart. A spare van whose tracker was never installed stays
 * "never reported". "East yard (migrating)" reads a Samsara account of its own through a legacy poller (run.ts
 * starts it): the workspace a newcomer watches a cutover from the legacy poller to core's polling in.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from '../core/db/database.ts';
import type { EventType } from '../core/events/catalogue.ts';
import { createWebhook, deleteWebhook, listWebhooks } from '../core/events/webhooks.ts';
import { resetConnectionFeed } from '../core/polling/poll-store.ts';
import { createApiKey } from '../core/registry/api-keys.ts';
import { createConnection, listConnections, updateConnection } from '../core/registry/connections.ts';
import { createVehicle } from '../core/registry/vehicles.ts';
import { createWorkspace, defaultPolicy, listWorkspaces, type CutoverMode, type Workspace } from '../core/registry/workspaces.ts';
import { demoCredentials, demoExternalId, demoMigratingAccount, type DemoFleetTelemetry, type DemoProvider, type DemoSimulators } from './simulators.ts';
import { simulatedEvAttributes } from '../sim/traccar/simulator-frames.ts';

export interface DemoWorkspace {
  id: string;
  name: string;
  apiKey: string;
  /** The migrating yard's: the Samsara connection its legacy poller posts for, and that connection's vehicles. */
  migrating?: { connectionId: string; vehicles: { externalId: string; name: string }[] };
}

/** The workspace that migrates from a legacy poller to core's polling. */
export const demoMigratingWorkspace = 'East yard (migrating)';

/**
 * Who owns the migrating yard's polling when it is made: the legacy poller, with core polling beside it and parity
 * reported (`shadow`). A later start leaves it where an operator moved it (to core, or back to legacy).
 */
export const demoMigratingCutover: CutoverMode = 'shadow';

interface Plan {
  name: string;
  connections: { provider: DemoProvider; transport: 'poll' | 'stream'; label: string; unbound: number; options?: Record<string, unknown> }[];
  /** This workspace also reads the fleet-telemetry dispatcher, when the demo runs one. */
  fleetTelemetry?: true;
}

const plans: Plan[] = [
  {
    name: 'North depot',
    connections: [
      { provider: 'samsara', transport: 'poll', label: 'Samsara (North)', unbound: 2 },
      // The shuttles' phones report their own battery as batteryLevel; the vehicle's state of charge comes as evSoc.
      { provider: 'traccar', transport: 'stream', label: 'Traccar shuttles', unbound: 0, options: simulatedEvAttributes },
    ],
  },
  {
    name: 'South depot',
    connections: [
      { provider: 'geotab', transport: 'poll', label: 'Geotab (South)', unbound: 2 },
      { provider: 'tessie', transport: 'stream', label: 'Tessie', unbound: 0 },
    ],
    fleetTelemetry: true,
  },
];

export async function seedDemo(db: Database, secretKey: Buffer, sims: DemoSimulators, dataDir: string): Promise<DemoWorkspace[]> {
  const keysFile = join(dataDir, 'demo-keys.json');
  const keys: Record<string, string> = existsSync(keysFile) ? (JSON.parse(readFileSync(keysFile, 'utf8')) as Record<string, string>) : {};
  const existing = await listWorkspaces(db);
  const result: DemoWorkspace[] = [];
  for (const plan of plans) {
    let workspace = existing.find((w) => w.name === plan.name);
    if (!workspace) {
      // Tight thresholds, so a newcomer sees vehicles turn stale (and come back) within minutes.
      workspace = await createWorkspace(db, {
        name: plan.name,
        policy: { ...defaultPolicy, pollIntervalSeconds: 15, freshnessThresholdSeconds: 60, silentAfterSeconds: 900, retentionDays: 30 },
      });
    }
    const connections = await listConnections(db, workspace.id);
    for (const wanted of plan.connections) {
      const baseUrl = sims.running[wanted.provider].url;
      const found = connections.find((c) => c.provider === wanted.provider);
      if (found) {
        // The simulators restarted: new fleets, new logs. Point at them and start the feeds afresh.
        await updateConnection(db, secretKey, workspace.id, found.id, { baseUrl, enabled: true, ...(wanted.options && { options: wanted.options }) });
        await resetConnectionFeed(db, workspace.id, found.id);
        continue;
      }
      const connection = await createConnection(db, secretKey, workspace.id, {
        provider: wanted.provider,
        transport: wanted.transport,
        baseUrl,
        label: wanted.label,
        credentials: { ...demoCredentials[wanted.provider] },
        options: wanted.options,
      });
      const fleet = sims.fleets[wanted.provider];
      for (const vehicle of fleet.vehicles.slice(0, fleet.vehicles.length - wanted.unbound)) {
        await createVehicle(db, workspace.id, {
          name: vehicle.name,
          vin: vehicle.vin,
          devices: [{ connectionId: connection.id, externalId: demoExternalId[wanted.provider](vehicle) }],
        });
      }
      if (wanted.transport === 'poll') {
        // A vehicle whose tracker was never installed: it shows as "never reported".
        await createVehicle(db, workspace.id, {
          name: `${plan.name.split(' ')[0]} spare van`,
          devices: [{ connectionId: connection.id, externalId: 'not-yet-installed' }],
        });
      }
    }
    if (plan.fleetTelemetry) await seedFleetTelemetry(db, secretKey, workspace.id, sims.fleetTelemetry);
    if (!keys[workspace.id]) keys[workspace.id] = (await createApiKey(db, workspace.id, 'demo dashboard')).key;
    result.push({ id: workspace.id, name: workspace.name, apiKey: keys[workspace.id]! });
  }
  const yard = await seedMigratingYard(db, secretKey, sims, existing.find((w) => w.name === demoMigratingWorkspace));
  if (!keys[yard.id]) keys[yard.id] = (await createApiKey(db, yard.id, 'demo dashboard')).key;
  result.push({ id: yard.id, name: demoMigratingWorkspace, apiKey: keys[yard.id]!, migrating: { connectionId: yard.connectionId, vehicles: yard.vehicles } });
  writeFileSync(keysFile, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  return result;
}

/**
 * The migrating yard: its Samsara connection to the yard's own account, every vehicle bound, its cutover. No backfill
 * when a vehicle is bound: the yard's history is the legacy poller's to write. Its freshness threshold allows for a
 * legacy poller that polls every 30 s and runs 90 s behind (run.ts).
 */
async function seedMigratingYard(
  db: Database,
  secretKey: Buffer,
  sims: DemoSimulators,
  existing: Workspace | undefined,
): Promise<{ id: string; connectionId: string; vehicles: { externalId: string; name: string }[] }> {
  const workspace =
    existing ??
    (await createWorkspace(db, {
      name: demoMigratingWorkspace,
      policy: { ...defaultPolicy, pollIntervalSeconds: 15, freshnessThresholdSeconds: 300, silentAfterSeconds: 900, retentionDays: 30 },
      cutover: demoMigratingCutover,
    }));
  const vehicles = sims.migratingFleet.vehicles.map((vehicle) => ({ externalId: demoExternalId.samsara(vehicle), name: vehicle.name }));
  const baseUrl = sims.running.samsara.url;
  const found = (await listConnections(db, workspace.id)).find((c) => c.provider === 'samsara');
  if (found) {
    await updateConnection(db, secretKey, workspace.id, found.id, { baseUrl, enabled: true });
    await resetConnectionFeed(db, workspace.id, found.id);
    return { id: workspace.id, connectionId: found.id, vehicles };
  }
  const connection = await createConnection(db, secretKey, workspace.id, {
    provider: 'samsara',
    transport: 'poll',
    baseUrl,
    label: 'Samsara (East yard)',
    credentials: { ...demoMigratingAccount.credentials },
  });
  for (const vehicle of sims.migratingFleet.vehicles) {
    await createVehicle(
      db,
      workspace.id,
      { name: vehicle.name, vin: vehicle.vin, devices: [{ connectionId: connection.id, externalId: demoExternalId.samsara(vehicle) }] },
      { backfillLookbackMs: 0 },
    );
  }
  return { id: workspace.id, connectionId: connection.id, vehicles };
}

/**
 * The fleet-telemetry connection, when the demo found a broker: credentials `{}` (the local broker takes anyone),
 * its vehicles bound by VIN. A start without a broker disables the one an earlier start made, so it neither fails
 * nor holds a stream slot.
 */
async function seedFleetTelemetry(db: Database, secretKey: Buffer, workspaceId: string, telemetry: DemoFleetTelemetry | undefined): Promise<void> {
  const found = (await listConnections(db, workspaceId)).find((c) => c.provider === 'tesla-fleet-telemetry');
  if (!telemetry) {
    if (found?.enabled) await updateConnection(db, secretKey, workspaceId, found.id, { enabled: false });
    return;
  }
  if (found) {
    await updateConnection(db, secretKey, workspaceId, found.id, { baseUrl: telemetry.publisher.url, enabled: true });
    return;
  }
  const connection = await createConnection(db, secretKey, workspaceId, {
    provider: 'tesla-fleet-telemetry',
    transport: 'stream',
    baseUrl: telemetry.publisher.url,
    label: 'Tesla Fleet Telemetry (MQTT)',
    credentials: {},
  });
  for (const vehicle of telemetry.fleet.vehicles) {
    await createVehicle(db, workspaceId, { name: vehicle.name, vin: vehicle.vin, devices: [{ connectionId: connection.id, externalId: vehicle.vin }] });
  }
}

/** The workspace whose events the demo's console receiver prints: the one whose Geotab outage turns vehicles stale. */
export const demoWebhookWorkspace = 'South depot';

/**
 * What the console receiver is subscribed to: the turns a person watching wants to see. Not
 * `fleetwire.vehicle.state.changed`, which every accepted reading of every vehicle causes and would flood the console.
 */
export const demoWebhookTypes: readonly EventType[] = [
  'fleetwire.vehicle.charging.started',
  'fleetwire.vehicle.charging.stopped',
  'fleetwire.vehicle.soc.crossed',
  'fleetwire.vehicle.freshness.changed',
];

const demoWebhookDescription = 'demo console receiver';

/** Removes the console receiver's subscription an earlier start made, if any. */
export async function removeDemoWebhook(db: Database, workspaceId: string): Promise<void> {
  for (const webhook of await listWebhooks(db, workspaceId)) {
    if (webhook.description === demoWebhookDescription) await deleteWebhook(db, workspaceId, webhook.id);
  }
}

/**
 * Subscribes the console receiver at `url` to the workspace's events, through the same function as the API, and
 * answers the signing secret. The receiver listens on a new port each start and a secret cannot be read back, so the
 * subscription an earlier start made is replaced, not updated.
 */
export async function seedDemoWebhook(db: Database, secretKey: Buffer, workspaceId: string, url: string, options: { allowPrivate: boolean }): Promise<string> {
  await removeDemoWebhook(db, workspaceId);
  const created = await createWebhook(db, secretKey, workspaceId, { url, types: [...demoWebhookTypes], description: demoWebhookDescription }, options);
  return created.secret;
}
