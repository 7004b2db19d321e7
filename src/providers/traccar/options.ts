/**
 * A Traccar connection's options: which position attribute carries which canonical signal, in which unit.
 *
 * Traccar's standard keys describe the tracking device, not the vehicle (traccar/traccar model/Position.java):
 * `batteryLevel` is "percentage" of the tracker's own battery (OsmAndProtocolDecoder sets it from the Traccar
 * Client phone's `batt`, TeltonikaProtocolDecoder from io113, the device's internal battery) and `charge` is that
 * battery charging. So by default `batteryLevel` is `tracker_battery_pct`, `charge` is nothing, and no attribute is
 * `soc_pct` or `charging_state`: the operator names the attribute that carries the traction battery (a CAN-bus IO
 * element such as Teltonika's `io<id>`, an OBD dongle's `hybridBatteryLevel`, or a Traccar computed attribute).
 * Distances in Traccar are metres (`odometer`, `totalDistance`, `obdOdometer`), which is the default unit here.
 */
import { z } from 'zod';

const attributeKey = z
  .string()
  .min(1)
  .max(128)
  .refine((key) => !/\p{Cc}/u.test(key), 'an attribute key has no control characters');

/** A factor applied to the raw value before the unit conversion (raw CAN values: 0.1, 0.01...). */
const scale = z
  .number()
  .finite()
  .refine((value) => value !== 0, 'scale cannot be 0')
  .default(1);

const percent = z.object({ attribute: attributeKey, unit: z.enum(['percent', 'fraction']).default('percent'), scale }).strict();
const distance = z.object({ attribute: attributeKey, unit: z.enum(['m', 'km', 'mi']).default('m'), scale }).strict();
const power = z.object({ attribute: attributeKey, unit: z.enum(['kW', 'W']).default('kW'), scale }).strict();
const temperature = z.object({ attribute: attributeKey, scale }).strict();
/** true/false, or a number: 0 is false, any other number true. */
const flag = z.object({ attribute: attributeKey }).strict();

const rawValue = z.union([z.string().max(64), z.number().finite(), z.boolean()]);
const rawValues = z.array(rawValue).max(32).default([]);
/**
 * Without `values`: true or 1 is charging, false or 0 is not charging. With `values`: the raw values (compared
 * exactly) that mean each state, for a device that reports an enumeration; any other value is skipped.
 */
const charging = z
  .object({
    attribute: attributeKey,
    values: z.object({ charging: rawValues, not_charging: rawValues, complete: rawValues }).strict().optional(),
  })
  .strict();

/** Per signal: where it comes from, or null to turn a default source off. */
export const traccarAttributesSchema = z
  .object({
    soc_pct: percent.nullable().optional(),
    tracker_battery_pct: percent.nullable().optional(),
    odometer_km: distance.nullable().optional(),
    range_km: distance.nullable().optional(),
    charge_power_kw: power.nullable().optional(),
    battery_temp_c: temperature.nullable().optional(),
    charging_state: charging.nullable().optional(),
    plugged_in: flag.nullable().optional(),
    ignition: flag.nullable().optional(),
  })
  .strict();

export const traccarOptionsSchema = z
  .object({
    attributes: traccarAttributesSchema.default({}),
    /**
     * For backfill: how many days of positions the server keeps (its `database.historyDays`; Traccar keeps all by
     * default, so unset means no bound), and its `report.maxPositions` (default 50,000), the most positions one report
     * answers per device (docs/PROVIDERS.md, "Traccar").
     */
    historyDays: z.number().int().min(1).max(36500).optional(),
    reportMaxPositions: z.number().int().min(1).max(10_000_000).optional(),
  })
  .strict();

export type TraccarOptions = z.infer<typeof traccarOptionsSchema>;
export type TraccarOptionsInput = z.input<typeof traccarOptionsSchema>;
type Attributes = TraccarOptions['attributes'];

/** Where each mapped signal comes from, defaults applied: what the mapping reads. */
export type AttributeSources = { [K in keyof Attributes]?: NonNullable<Attributes[K]> };

/** Traccar's own keys whose meaning the source fixes: these map without any option. */
const defaults: AttributeSources = {
  tracker_battery_pct: { attribute: 'batteryLevel', unit: 'percent', scale: 1 },
  // `odometer` is the vehicle's own (CAN/OBD or the device's); `totalDistance` is Traccar's GPS sum since the
  // device was added, a different counter: mixing them would make the odometer jump.
  odometer_km: { attribute: 'odometer', unit: 'm', scale: 1 },
  ignition: { attribute: 'ignition' },
};

export const defaultAttributeSources: Readonly<AttributeSources> = Object.freeze({ ...defaults });

/** The sources parsed options describe: each configured signal replaces its default, null removes it. */
export function attributeSources(options: TraccarOptions): AttributeSources {
  const sources: Record<string, unknown> = { ...defaults };
  for (const [signal, source] of Object.entries(options.attributes)) {
    if (source === null) delete sources[signal];
    else if (source !== undefined) sources[signal] = source;
  }
  return sources as AttributeSources;
}

const sessionKey = 'traccar.attributeSources';

/** Keeps a socket's sources in its session, where decode finds them (decode has no connection context). */
export function rememberAttributeSources(session: Map<string, unknown>, sources: AttributeSources): void {
  session.set(sessionKey, sources);
}

/** The sources a socket was prepared with, or the defaults. */
export function attributeSourcesOf(session: Map<string, unknown>): Readonly<AttributeSources> {
  return (session.get(sessionKey) as AttributeSources | undefined) ?? defaultAttributeSources;
}
