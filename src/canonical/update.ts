/**
 * The canonical update (DESIGN §3): what one source learned about one device at one moment of receipt.
 * Both the scheduled poll path and the stream runtime produce exactly this shape; the ingest handler is the
 * only consumer.
 *
 * Two schemas come from one definition:
 * - `canonicalUpdateSchema`, strict per signal, gives the TypeScript types producers use and the JSON Schema
 *   published for `POST /internal/v1/ingest`;
 * - `updateEnvelopeSchema`, the shape check the ingest handler applies first. It leaves signal names and values
 *   to the catalogue, so a bad reading is rejected on its own (`unknown_signal`, `invalid_value`) instead of
 *   failing the whole update.
 */
import { z } from 'zod';
import { locationSchema, signalCatalogue, signalNames, type SignalName, type SignalValue } from './signals.ts';

export const updateSources = ['poll', 'stream', 'legacy_poll'] as const;
export type UpdateSource = (typeof updateSources)[number];

/** The limits of one ingest request. */
export const ingestLimits = {
  updatesPerBatch: 5000,
  readingsPerUpdate: 1000,
  readingsPerBatch: 100_000,
  /** Bytes of one request body. */
  bodyBytes: 8 * 1024 * 1024,
} as const;

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Control characters are exactly what this pattern exists to find.
// eslint-disable-next-line no-control-regex
const controlCharacter = /[\u0000-\u001f\u007f]/;

/** Text that PostgreSQL can store as-is: no control characters, no unpaired surrogates. */
export function safeText(maxLength: number) {
  return z
    .string()
    .min(1)
    .max(maxLength)
    .refine((s) => !controlCharacter.test(s), 'must not contain control characters')
    .refine((s) => !loneSurrogate.test(s), 'must be well-formed unicode');
}

// C1 controls too: a name is shown to people, and these render as nothing or garble a terminal.
// eslint-disable-next-line no-control-regex
const controlOrC1 = /[\u0000-\u001f\u007f-\u009f]/;
/** Something a reader can see: not only spaces and invisible format characters (zero-width space, say). */
const visible = /[^\p{White_Space}\p{Cf}]/u;

/**
 * A name people give and read (a workspace, a vehicle, a connection's label): stored trimmed, never blank, no
 * control characters. Answers `must not be blank` for an empty or whitespace-only name.
 */
export function safeName(maxLength: number) {
  return z
    .string()
    .trim()
    .min(1, 'must not be blank')
    .max(maxLength)
    .refine((s) => s.length === 0 || visible.test(s), 'must not be blank')
    .refine((s) => !controlOrC1.test(s), 'must not contain control characters')
    .refine((s) => !loneSurrogate.test(s), 'must be well-formed unicode');
}

/**
 * The external device ids ingest and device bindings accept. A provider mapping skips an entity whose id fails
 * this: one such id (a NUL, an unpaired surrogate, 300 characters) would make the whole update malformed at ingest.
 */
export const externalDeviceIdSchema = safeText(256);

/** An RFC 3339 timestamp with a zone (Z or an offset) that names a real instant. */
export const timestampSchema = z
  .string()
  .refine((s) => parseTimestamp(s) !== undefined, 'must be an RFC 3339 date-time with a zone (Z or ±hh:mm)')
  .meta({ format: 'date-time' });

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const daysInMonth = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Recently parsed timestamps. Readings of one update often share their observed time, and every timestamp is
 * read twice on the ingest path (shape check, then rules); the parse is pure, so its answers can be kept.
 */
const parsed = new Map<string, number | undefined>();
const parsedLimit = 4096;

/**
 * Milliseconds since the epoch, or undefined when the text is not an RFC 3339 instant with a zone. Fractions
 * below a millisecond are truncated: Fleetwire keeps time to the millisecond everywhere.
 */
export function parseTimestamp(text: string): number | undefined {
  if (parsed.has(text)) return parsed.get(text);
  const ms = parseTimestampText(text);
  if (parsed.size >= parsedLimit) parsed.clear();
  parsed.set(text, ms);
  return ms;
}

function parseTimestampText(text: string): number | undefined {
  if (text.length > 40) return undefined;
  const m = rfc3339.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth[month - 1]! + leap) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  let offsetMinutes = 0;
  if (!m[8]) {
    const offsetHours = Number(m[10]);
    const offsetMins = Number(m[11]);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMinutes * 60_000;
  // Date.UTC maps years 0..99 to 1900..1999; such instants are refused rather than misread.
  if (year < 100 || !Number.isFinite(utc)) return undefined;
  // An offset or a leap second can carry the instant out of the years 0100..9999 ("9999-12-31T23:59:59-01:00").
  // Fleetwire writes every instant back with toISOString, which spells those years "+010000-..." or "0099-...":
  // text this function refuses and PostgreSQL rejects (a receivedAt past 9999 failed the whole batch with a 500).
  return utc < minInstantMs || utc > maxInstantMs ? undefined : utc;
}

/** The instants whose toISOString this function reads back: 0100-01-01T00:00:00.000Z..9999-12-31T23:59:59.999Z. */
const minInstantMs = Date.UTC(100, 0, 1);
const maxInstantMs = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const uuid = z.uuid();

export type CanonicalReading = {
  [S in SignalName]: { signal: S; value: SignalValue<S>; observedAt: string };
}[SignalName];

/**
 * A charging session as the provider reports it (Geotab's ChargeEvent, say): kept once per provider id on the
 * vehicle, a later report of the same id replacing the earlier. Values the provider did not give are null.
 */
export const chargingSessionSchema = z
  .object({
    externalId: safeText(128),
    startedAt: timestampSchema,
    endedAt: timestampSchema.nullable(),
    startSocPct: z.number().min(0).max(100).nullable(),
    endSocPct: z.number().min(0).max(100).nullable(),
    energyKwh: z.number().min(0).max(10_000).nullable(),
    peakPowerKw: z.number().min(0).max(4000).nullable(),
    location: locationSchema.nullable(),
  })
  .strict()
  .refine((s) => s.endedAt === null || parseTimestamp(s.endedAt)! >= parseTimestamp(s.startedAt)!, { message: 'endedAt must not be before startedAt', path: ['endedAt'] });

export type CanonicalChargingSession = z.infer<typeof chargingSessionSchema>;

export interface CanonicalUpdate {
  workspaceId: string;
  provider: string;
  connectionId: string;
  externalDeviceId: string;
  source: UpdateSource;
  receivedAt: string;
  readings: CanonicalReading[];
  /** Charging sessions of the device's vehicle, when the provider reports them. */
  chargingSessions?: CanonicalChargingSession[];
}

/** Charging sessions in one update at most. */
const sessionsPerUpdate = 100;

const readingVariants = signalNames.map((signal) =>
  z
    .object({
      signal: z.literal(signal),
      value: signalCatalogue[signal].value,
      observedAt: timestampSchema,
    })
    .describe(`A ${signal} reading (${signalCatalogue[signal].description}).`),
);

export const canonicalReadingSchema = z.union(readingVariants) as unknown as z.ZodType<CanonicalReading>;

const envelopeFields = {
  workspaceId: uuid,
  provider: safeText(64),
  connectionId: uuid,
  externalDeviceId: externalDeviceIdSchema,
  source: z.enum(updateSources),
  receivedAt: timestampSchema,
};

export const canonicalUpdateSchema = z
  .object({
    ...envelopeFields,
    readings: z.array(canonicalReadingSchema).max(ingestLimits.readingsPerUpdate),
    chargingSessions: z.array(chargingSessionSchema).max(sessionsPerUpdate).optional(),
  })
  .describe('One canonical update: what one source learned about one device at one moment of receipt.') as unknown as z.ZodType<CanonicalUpdate>;

export const updateEnvelopeSchema = z.object({
  ...envelopeFields,
  readings: z
    .array(
      z.object({
        signal: safeText(64),
        value: z.unknown().refine((v) => v !== undefined, 'is required'),
        observedAt: timestampSchema,
      }),
    )
    .max(ingestLimits.readingsPerUpdate),
  chargingSessions: z.array(chargingSessionSchema).max(sessionsPerUpdate).optional(),
});

export type UpdateEnvelope = z.infer<typeof updateEnvelopeSchema>;

/**
 * Updates cut into ingest batches within `ingestLimits`: an update with more readings than one may hold goes as
 * several (its charging sessions with the first), and batches close before they would pass either batch limit.
 * No empty batch.
 */
export function batchesWithinLimits(updates: readonly CanonicalUpdate[]): CanonicalUpdate[][] {
  const batches: CanonicalUpdate[][] = [];
  let current: CanonicalUpdate[] = [];
  let readings = 0;
  const add = (update: CanonicalUpdate) => {
    if (current.length > 0 && (current.length >= ingestLimits.updatesPerBatch || readings + update.readings.length > ingestLimits.readingsPerBatch)) {
      batches.push(current);
      current = [];
      readings = 0;
    }
    current.push(update);
    readings += update.readings.length;
  };
  for (const update of updates) {
    if (update.readings.length <= ingestLimits.readingsPerUpdate) {
      add(update);
      continue;
    }
    const { chargingSessions, ...rest } = update;
    for (let i = 0; i < update.readings.length; i += ingestLimits.readingsPerUpdate) {
      const part: CanonicalUpdate = { ...rest, readings: update.readings.slice(i, i + ingestLimits.readingsPerUpdate) };
      add(i === 0 && chargingSessions ? { ...part, chargingSessions } : part);
    }
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
