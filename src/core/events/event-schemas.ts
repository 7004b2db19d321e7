/**
 * The schema of every event's `data`, and of the CloudEvents envelope around it: the AsyncAPI description is made
 * from these, and the tests check every event the store writes against them, so the description cannot drift from
 * what consumers receive.
 */
import { z } from 'zod';
import { chargingStates } from '../../canonical/signals.ts';
import { updateSources } from '../../canonical/update.ts';
import { connectionStatuses, vehicleStatuses } from '../health/rules.ts';
import type { EventType } from './catalogue.ts';

const isoTime = z.iso.datetime({ offset: true }).describe('RFC 3339 time');
const uuid = z.uuid();

const changedSignal = z
  .object({
    value: z.unknown().describe("The signal's new value, in the unit its name carries (soc_pct in percent, odometer_km in km, location as {lat, lon})"),
    observedAt: isoTime.describe('When the vehicle observed it'),
    source: z.enum(updateSources).describe('The path it came by: poll, stream or legacy_poll'),
    provider: z.string().describe('The provider that reported it'),
  })
  .strict();

const chargingChanged = z
  .object({
    vehicleId: uuid,
    chargingState: z.enum(chargingStates),
    previousChargingState: z.enum(chargingStates).nullable(),
    socPct: z.number().nullable().describe('The state of charge at that moment, when one was known'),
    observedAt: isoTime,
  })
  .strict();

const healthReason = z
  .object({ code: z.string().describe('A stable reason code'), detail: z.string(), connectionId: uuid.nullable() })
  .strict();

export const eventDataSchemas = {
  'fleetwire.vehicle.state.changed': z
    .object({
      vehicleId: uuid,
      signals: z.record(z.string(), changedSignal).describe('Every signal whose snapshot value this unit of work moved, by canonical name'),
    })
    .strict()
    .describe('The signals that moved the snapshot in one unit of work, with values, observed times and sources'),
  'fleetwire.vehicle.charging.started': chargingChanged.describe("charging_state turned to 'charging'"),
  'fleetwire.vehicle.charging.stopped': chargingChanged.describe("charging_state turned from 'charging' to another state"),
  'fleetwire.vehicle.soc.crossed': z
    .object({
      vehicleId: uuid,
      thresholdPct: z.number().describe("One of the workspace policy's SoC thresholds"),
      direction: z.enum(['up', 'down']),
      socPct: z.number(),
      previousSocPct: z.number(),
      observedAt: isoTime,
    })
    .strict()
    .describe("The state of charge crossed one of the workspace's thresholds"),
  'fleetwire.vehicle.freshness.changed': z
    .object({
      vehicleId: uuid,
      status: z.enum(vehicleStatuses),
      previousStatus: z.enum(vehicleStatuses),
      reason: healthReason.nullable().describe('Why a stale or silent vehicle is behind; null when fresh'),
    })
    .strict()
    .describe("A vehicle's freshness turned (fresh, stale, silent, never), with the reason"),
  'fleetwire.connection.health.changed': z
    .object({
      connectionId: uuid,
      provider: z.string(),
      transport: z.enum(['poll', 'stream']),
      label: z.string(),
      status: z.enum(connectionStatuses),
      previousStatus: z.string(),
      detail: z.string(),
      lastError: z.object({ class: z.string(), message: z.string(), at: isoTime.nullable() }).strict().nullable(),
    })
    .strict()
    .describe("A provider connection's health turned"),
  'fleetwire.workspace.cutover.changed': z
    .object({
      workspaceId: uuid,
      mode: z.enum(['legacy', 'shadow', 'core']).describe('Which poller owns the workspace now (shadow: the legacy poller, with core polling beside it)'),
      previousMode: z.enum(['legacy', 'shadow', 'core']),
      actor: z.string().describe('Who changed it, as recorded'),
      reason: z.string().nullable(),
      forced: z.boolean().describe('Went to core although parity did not meet the gate'),
    })
    .strict()
    .describe('The workspace moved between the legacy poller, shadow and core'),
} satisfies Record<EventType, z.ZodType>;

/** The CloudEvents 1.0 envelope (JSON format) of an event of `type`. */
export function cloudEventSchema(type: EventType) {
  return z
    .object({
      specversion: z.literal('1.0'),
      id: uuid.describe('Unique per event: the key to de-duplicate by'),
      source: z.string().regex(/^\/workspaces\/[0-9a-f-]{36}$/).describe('/workspaces/<workspace id>'),
      type: z.literal(type),
      subject: z.string().describe('vehicles/<id>, connections/<id> or workspace'),
      time: isoTime,
      datacontenttype: z.literal('application/json'),
      sequence: z.string().regex(/^\d{19}$/).describe("Counts up per subject, zero-padded so that string order is number order (the CloudEvents sequence extension)"),
      data: eventDataSchemas[type],
    })
    .strict();
}
