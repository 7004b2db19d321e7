/** RFC 3339 UTC text of a database timestamp (DESIGN §9: every time on the wire is UTC). */
export function iso(value: Date): string {
  return value.toISOString();
}

export function isoOrNull(value: Date | null | undefined): string | null {
  return value ? value.toISOString() : null;
}
