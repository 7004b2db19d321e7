/**
 * fast-check arbitraries of hostile input for the fuzz suite (test/fuzz). JSON is written as text here, so it can
 * carry what JSON.stringify never writes: 1e309, -0, 1e-400, duplicate keys, escaped lone surrogates, nesting
 * deeper than any recursive serializer survives. Around it: odd unicode, extreme numbers, timestamps at the
 * edges of RFC 3339, and wire records whose every field may be missing, null or of the wrong type.
 */
import fc from 'fast-check';

/** A fragment of JSON text. */
export type JsonText = string;

export const jsonText = {
  string: (value: string): JsonText => JSON.stringify(value),
  array: (items: readonly JsonText[]): JsonText => `[${items.join(',')}]`,
  /** Entries in this order; a key may repeat (JSON.parse keeps the last). */
  object: (entries: readonly (readonly [string, JsonText])[]): JsonText =>
    `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`,
  /** `depth` arrays or objects around `leaf`. */
  nested: (depth: number, kind: 'array' | 'object', leaf: JsonText = '1'): JsonText =>
    kind === 'array' ? `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`,
};

/** Characters that break naive code: controls, NUL, lone surrogates, bidi and zero-width marks, emoji, combining marks. */
export const oddChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '\u0000', '\u0001', '\u001f', '\u007f', '\n', '\r', '\t', '\ud800', '\udbff', '\udc00', '\udfff', '\u200e', '\u200f',
      '\u202e', '\u2066', '\u2028', '\u2029', '\u200b', '\ufeff', '\ufffd', '\uffff', '\u00a0', '\u0301', '😀', '👩‍👩‍👧',
      '🇺🇦', 'é', '中', 'ﷺ', '"', '\\', '/', "'", '`', '$', '{', '}',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

/** Text far beyond any field's limit. */
export const overlongText: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 257, max: 20_000 }), fc.constantFrom('x', '😀', '\u202e', '\u0000', 'é'))
  .map(([length, unit]) => unit.repeat(length));

export const oddText: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: oddChar, maxLength: 24 }) },
  { weight: 1, arbitrary: overlongText },
);

/** Number tokens as JSON text, including those that parse to Infinity, -0 or 0 by underflow. */
export const numberToken: fc.Arbitrary<JsonText> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '1e309', '-1e309', '1E400', '-0', '-0.0', '0', '1e-400', '-1e-400', '1.7976931348623157e308', '-1.7976931348623157e308',
      '5e-324', '2.2250738585072014e-308', '9007199254740993', '-9007199254740993', '123456789012345678901234567890123456789',
      '0.1', '1E2', '1e+2', '100.0000000000000000001', '99.99999999999999999', '-1', '360', '360.0000000001', '-60', '4000',
    ),
  },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)) },
  { weight: 1, arbitrary: fc.integer().map(String) },
);

/** Numbers JSON.parse can give (±Infinity from 1e309, -0) and a few it cannot (NaN), for pure functions. */
export const extremeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, Number.MAX_VALUE, -Number.MAX_VALUE,
    Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_SAFE_INTEGER + 2, Number.MIN_SAFE_INTEGER - 2, 1e21, -1e21, 1e-7,
  ),
  fc.double(),
);

/**
 * Timestamps at the edges, sorted by what an RFC 3339 reader that keeps instants between the years 0100 and 9999
 * (the range `toISOString` writes with four digits and Fleetwire reads back) must make of them.
 */
export const edgeTimestamps = {
  /** Real instants: leap days, a leap second, odd offsets and spellings, the ends of the range. */
  valid: [
    '2016-12-31T23:59:60Z',
    '2024-02-29T12:00:00Z',
    '2000-02-29T00:00:00Z',
    '2024-05-01T12:00:00-00:00',
    '2024-05-01T12:00:00+23:59',
    '2024-05-01T12:00:00-23:59',
    '2024-05-01t12:00:00z',
    '2024-05-01T12:00:00.123456789Z',
    '2024-05-01T12:00:00.1Z',
    '0100-01-01T00:00:00Z',
    '0100-01-01T00:00:00-05:00',
    '1969-12-31T23:59:59.999Z',
    '1970-01-01T00:00:00Z',
    '9999-12-31T23:59:59.999Z',
    '9999-12-31T12:00:00+11:00',
  ],
  /** Well-formed RFC 3339, but the instant lies outside 0100-01-01..9999-12-31 UTC (an offset or leap second pushes it out). */
  outOfRange: [
    '0001-01-01T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '0099-12-31T23:59:59Z',
    '0100-01-01T00:30:00+01:00',
    '0100-01-01T00:00:00.000+00:01',
    '9999-12-31T23:59:59-23:59',
    '9999-12-31T23:30:00-00:30',
    '9999-12-31T23:59:60Z',
  ],
  /** Not an instant at all: impossible dates and times, no zone, other formats. */
  invalid: [
    '10000-01-01T00:00:00Z',
    '+002024-05-01T12:00:00Z',
    '2023-02-29T12:00:00Z',
    '1900-02-29T12:00:00Z',
    '2024-04-31T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-00-10T00:00:00Z',
    '2024-05-00T00:00:00Z',
    '2024-05-01T24:00:00Z',
    '2024-05-01T23:60:00Z',
    '2024-05-01T23:59:61Z',
    '2024-05-01T12:00:00+24:00',
    '2024-05-01T12:00:00+12:60',
    '2024-05-01T12:00:00+0000',
    '2024-05-01T12:00:00',
    '2024-05-01T12:00Z',
    '2024-05-01 12:00:00Z',
    '2024-05-01T12:00:00.1234567890Z',
    '2024-05-01T12:00:00.Z',
    '2024-05-01',
    '12:00:00Z',
    '',
    'now',
    'Wed, 01 May 2024 12:00:00 GMT',
    '1714564800',
    ' 2024-05-01T12:00:00Z',
    '2024-05-01T12:00:00Z ',
    '2024-05-01T12:00:00Z\u0000',
    '2024-05-01T12:00:00Z\n',
    '２０２４-05-01T12:00:00Z',
    '2024-W18-3T12:00:00Z',
  ],
} as const;

/** Timestamps assembled from random parts, most of them impossible. */
export const randomTimestamp: fc.Arbitrary<string> = fc
  .record({
    year: fc.oneof(fc.constantFrom(0, 1, 99, 100, 1969, 1970, 2000, 2016, 2024, 2100, 9999, 10000), fc.integer({ min: 0, max: 9999 })),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.integer({ min: 0, max: 25 }),
    minute: fc.integer({ min: 0, max: 61 }),
    second: fc.integer({ min: 0, max: 61 }),
    fraction: fc.option(fc.stringMatching(/^\d{1,12}$/), { nil: undefined }),
    separator: fc.constantFrom('T', 't', ' '),
    zone: fc.oneof(fc.constantFrom('Z', 'z', '', '+00:00', '-00:00', '+0000', '+14:00', '-12:00', '+23:59', '+24:00', '-99:99')),
  })
  .map(({ year, month, day, hour, minute, second, fraction, separator, zone }) => {
    const two = (n: number) => String(n).padStart(2, '0');
    const frac = fraction === undefined ? '' : `.${fraction}`;
    return `${String(year).padStart(4, '0')}-${two(month)}-${two(day)}${separator}${two(hour)}:${two(minute)}:${two(second)}${frac}${zone}`;
  });

/**
 * One instant in the spellings RFC 3339 allows: Z or an offset, lower case, 0 to 9 fractional digits. Every
 * spelling names exactly `ms` (no fraction is written only when there are no milliseconds to lose).
 */
export function spelledInstant(ms: number): fc.Arbitrary<string> {
  return fc
    .record({
      offsetMinutes: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }) }),
      digits: fc.constantFrom(0, 3, 6, 7, 9),
      lowerCase: fc.boolean(),
    })
    .map(({ offsetMinutes, digits, lowerCase }) => {
      const local = new Date(ms + offsetMinutes * 60_000).toISOString();
      const millis = local.slice(20, 23);
      const shown = digits === 0 && millis !== '000' ? 3 : digits;
      const fraction = shown === 0 ? '' : `.${`${millis}000000`.slice(0, shown)}`;
      const abs = Math.abs(offsetMinutes);
      const zone =
        offsetMinutes === 0 ? 'Z' : `${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
      const text = `${local.slice(0, 19)}${fraction}${zone}`;
      return lowerCase ? text.replace('T', 't').replace('Z', 'z') : text;
    });
}

/** Any JSON scalar as text, hostile ones included. */
export const scalarText: fc.Arbitrary<JsonText> = fc.oneof(
  fc.constantFrom('null', 'true', 'false'),
  numberToken,
  oddText.map(jsonText.string),
  fc.constantFrom('"\\ud800"', '"\\uDC00x"', '"\\ud83d\\ude00"', '"\\ud83d"', '"a\\u0000b"', '"\\u202e\\u200f"', '"\\uFEFF"', '"\\/"', '"50"', '" 50 "', '"0x32"', '"1e3"', '"NaN"', '"Infinity"', '"true"', '""'),
);

const ordinaryKeys = ['updates', 'workspaceId', 'provider', 'connectionId', 'externalDeviceId', 'source', 'receivedAt', 'readings', 'signal', 'value', 'observedAt', 'lat', 'lon', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'length', ''];

function anyJsonTextWith(keys: fc.Arbitrary<string>): fc.Arbitrary<JsonText> {
  return fc.letrec<{ value: JsonText }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalarText,
      fc.array(tie('value'), { maxLength: 4 }).map(jsonText.array),
      fc.array(fc.tuple(keys, tie('value')), { maxLength: 4 }).map(jsonText.object),
    ),
  })).value;
}

/** Random JSON text whose keys may include `__proto__` (which the HTTP parser refuses outright). */
export const anyJsonText = anyJsonTextWith(fc.oneof(fc.constantFrom(...ordinaryKeys, '__proto__'), oddText));
/** Random JSON text without `__proto__` keys: it reaches the ingest handler. */
export const reachableJsonText = anyJsonTextWith(fc.oneof(fc.constantFrom(...ordinaryKeys), oddText));

/** A value of any type but the one a field wants: hostile JS values for the pure mapping functions. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, false, '', '0', '1e3', 'NaN', [], {}),
  extremeNumber,
  oddText,
  fc.constantFrom(...edgeTimestamps.invalid, ...edgeTimestamps.outOfRange),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.anything({ maxDepth: 3, withBoxedValues: true, withNullPrototype: true }),
);

const missing = Symbol('missing');

/**
 * A wire record whose every field is mostly its good value, sometimes a hostile value, sometimes missing, plus
 * now and then a key nobody asked for.
 */
export function wireRecord(fields: Record<string, fc.Arbitrary<unknown>>, options: { good?: number } = {}): fc.Arbitrary<Record<string, unknown>> {
  const good = options.good ?? 6;
  const mutated = Object.fromEntries(
    Object.entries(fields).map(([key, arbitrary]) => [
      key,
      fc.oneof({ weight: good, arbitrary }, { weight: 1, arbitrary: hostileValue }, { weight: 1, arbitrary: fc.constant(missing) }),
    ]),
  );
  const extra = fc.oneof(
    { weight: 6, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('constructor', 'toString', 'valueOf', '__defineGetter__'), oddText), hostileValue, { maxKeys: 2 }) },
  );
  return fc.tuple(fc.record(mutated), extra).map(([record, more]) => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(more)) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    for (const [key, value] of Object.entries(record)) if (value !== missing) out[key] = value;
    return out;
  });
}

/** A list of wire entries, or something that is not a list at all. */
export function wireList<T>(entry: fc.Arbitrary<T>, maxLength = 4): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: fc.array(entry, { maxLength }) }, { weight: 1, arbitrary: hostileValue });
}

/** A number token to write into JSON text as-is (1e309, -0, 1e-400), inside a value given to `toJsonText`. */
export class RawToken {
  constructor(readonly text: JsonText) {}
}

export const rawNumber: fc.Arbitrary<RawToken> = numberToken.map((text) => new RawToken(text));

/**
 * JSON text of a value that may hold RawTokens. What JSON cannot carry goes as JSON.stringify has it (undefined
 * and functions dropped, NaN and Infinity as null), so the text is always what a sender could put on a wire.
 */
export function toJsonText(value: unknown): JsonText {
  const tokens: JsonText[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof RawToken) {
      tokens.push(v.text);
      return `\u0000raw${tokens.length - 1}\u0000`;
    }
    return v;
  });
  return (text ?? 'null').replace(/"\\u0000raw(\d+)\\u0000"/g, (_match, i: string) => tokens[Number(i)]!);
}
