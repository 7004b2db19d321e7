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
import { signalCatalogue, signalNames, type SignalName, type SignalValue } from './signals.ts';

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

/** An RFC 3339 timestamp with a zone (Z or an offset) that names a real instant. */
export const timestampSchema = z.iso
  .datetime({ offset: true })
  .refine((s) => parseTimestamp(s) !== undefined, 'must be a real date and time');

/** Milliseconds since the epoch, or undefined when the text is not a valid RFC 3339 instant. */
export function parseTimestamp(text: string): number | undefined {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) return undefined;
  // Date.parse rolls 2026-02-30 over to March; the calendar date must survive a round trip.
  const datePart = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (datePart) {
    const [, y, m, d] = datePart;
    const offsetMatch = /([+-])(\d{2}):?(\d{2})$/.exec(text);
    const offsetMs = offsetMatch
      ? (offsetMatch[1] === '-' ? -1 : 1) * (Number(offsetMatch[2]) * 60 + Number(offsetMatch[3])) * 60_000
      : 0;
    const local = new Date(ms + offsetMs);
    if (local.getUTCFullYear() !== Number(y) || local.getUTCMonth() + 1 !== Number(m) || local.getUTCDate() !== Number(d)) {
      return undefined;
    }
  }
  return ms;
}

const uuid = z.uuid();

export type CanonicalReading = {
  [S in SignalName]: { signal: S; value: SignalValue<S>; observedAt: string };
}[SignalName];

export interface CanonicalUpdate {
  workspaceId: string;
  provider: string;
  connectionId: string;
  externalDeviceId: string;
  source: UpdateSource;
  receivedAt: string;
  readings: CanonicalReading[];
}

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
  externalDeviceId: safeText(256),
  source: z.enum(updateSources),
  receivedAt: timestampSchema,
};

export const canonicalUpdateSchema = z
  .object({ ...envelopeFields, readings: z.array(canonicalReadingSchema).max(ingestLimits.readingsPerUpdate) })
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
});

export type UpdateEnvelope = z.infer<typeof updateEnvelopeSchema>;
