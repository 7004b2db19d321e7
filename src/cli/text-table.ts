/** The CLI's text for a person: tables of one line per row, cells without terminal control characters. */

/** A cell as one line without terminal control characters (a provider's ids, a receiver's error text can hold anything). */
export function cell(text: string, max = 200): string {
  const flat = text.replace(/[\p{Cc}]+/gu, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** An ISO time to the second: the table is read by a person. */
export const second = (iso: string) => iso.replace(/\.\d+Z$/, 'Z');

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
