/**
 * A CSV reader for the vehicle import, after RFC 4180: fields separated by commas, records by CRLF or LF; a field
 * in double quotes may hold commas, line breaks and doubled quotes (`""` for one). A byte-order mark at the start is
 * dropped (spreadsheets write one), and blank lines are skipped. What RFC 4180 does not allow is refused, naming
 * the line, rather than guessed at: a quote inside an unquoted field, text after a closing quote, a quote left open.
 */

export class CsvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

export interface CsvRecord {
  /** The line the record starts on, counting from 1: what a spreadsheet calls its row. */
  line: number;
  fields: string[];
}

export function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const input = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  // Whether the current field was quoted, and whether anything of the record has been read.
  let quoted = false;
  let started = false;

  const endField = () => {
    fields.push(field);
    field = '';
    quoted = false;
  };
  const endRecord = () => {
    endField();
    // A blank line is no record.
    if (!(fields.length === 1 && fields[0] === '' && !started)) records.push({ line: recordLine, fields });
    fields = [];
    started = false;
  };

  while (i < input.length) {
    const c = input[i]!;
    if (c === '"') {
      if (field !== '' || quoted) throw new CsvError(line, 'a double quote inside a field that is not quoted (quote the whole field, and double the quote)');
      quoted = true;
      started = true;
      i += 1;
      // The quoted part, to its closing quote.
      for (;;) {
        if (i >= input.length) throw new CsvError(recordLine, 'a quoted field is never closed');
        const q = input[i]!;
        if (q === '"') {
          if (input[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        if (q === '\n') line += 1;
        field += q;
        i += 1;
      }
      const next = input[i];
      if (next !== undefined && next !== ',' && next !== '\n' && !(next === '\r' && input[i + 1] === '\n')) {
        throw new CsvError(line, 'text after the closing quote of a field');
      }
      continue;
    }
    if (c === ',') {
      started = true;
      endField();
      i += 1;
      continue;
    }
    if (c === '\n' || (c === '\r' && input[i + 1] === '\n')) {
      endRecord();
      i += c === '\r' ? 2 : 1;
      line += 1;
      recordLine = line;
      continue;
    }
    if (quoted) throw new CsvError(line, 'text after the closing quote of a field');
    field += c;
    started = true;
    i += 1;
  }
  if (field !== '' || quoted || fields.length > 0) endRecord();
  return records;
}
