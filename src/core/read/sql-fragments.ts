/** SQL expressions the read side shares. */

/** A timestamptz as RFC 3339 UTC text with milliseconds, for JSON built inside the database. */
export function utcText(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}
