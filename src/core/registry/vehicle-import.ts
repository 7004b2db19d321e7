/**
 * Vehicles imported from a table (CSV with the columns name, vin, connection, external_id): all of them or none.
 * Every row is checked first on its own (names, VINs, ids, repeats within the table), then every row is created in
 * one transaction through createVehicle, so the registry's own checks apply (VIN free in the workspace, the
 * connection the workspace's, the device bound nowhere else). Any error, of any row, rolls everything back, and the
 * answer lists every row's errors, not only the first: an operator fixes the table once.
 */
import { z } from 'zod';
import { externalDeviceIdSchema, safeName } from '../../canonical/update.ts';
import type { Database } from '../db/database.ts';
import { DomainError } from '../errors.ts';
import { markDiscoveredBound } from './discovered-devices.ts';
import { createVehicle, type BindingOptions } from './vehicles.ts';

export const importColumns = ['name', 'vin', 'connection', 'external_id'] as const;
type Column = (typeof importColumns)[number];

/** A table of more rows than this is refused whole: it is a job for several imports. */
export const importRowLimit = 5000;

export interface ImportRowError {
  /** The table's line (the header is line 1), as a spreadsheet numbers its rows. */
  row: number;
  field: Column | null;
  /** A stable code: required, invalid, duplicate_in_file, vin_taken, unknown_connection, device_already_bound, ... */
  reason: string;
  detail: string;
}

/** The import was refused; nothing was written. */
export class ImportRefused extends Error {
  constructor(readonly errors: ImportRowError[]) {
    super(`the import was refused: ${errors.length} error${errors.length === 1 ? '' : 's'}; nothing was written`);
    this.name = 'ImportRefused';
  }
}

interface ImportRow {
  row: number;
  name: string;
  vin: string | null;
  device: { connectionId: string; externalId: string } | null;
}

const nameSchema = safeName(200);
// As the API takes a VIN: compared and kept without case or surrounding spaces (core/http/schemas.ts).
const vinSchema = safeName(64).toUpperCase();
const connectionSchema = z.uuid();

/** Which registry error belongs to which column. */
const fieldOfCode: Record<string, Column> = { vin_taken: 'vin', unknown_connection: 'connection', device_already_bound: 'external_id' };

function checkHeader(header: readonly string[]): { columns: Map<Column, number>; errors: ImportRowError[] } {
  const columns = new Map<Column, number>();
  const errors: ImportRowError[] = [];
  header.forEach((raw, index) => {
    const name = raw.trim().toLowerCase();
    if (!(importColumns as readonly string[]).includes(name)) {
      errors.push({ row: 1, field: null, reason: 'unknown_column', detail: `column ${JSON.stringify(raw.slice(0, 64))} is not one of ${importColumns.join(', ')}` });
    } else if (columns.has(name as Column)) {
      errors.push({ row: 1, field: name as Column, reason: 'duplicate_column', detail: `column ${name} appears twice` });
    } else columns.set(name as Column, index);
  });
  if (!columns.has('name')) errors.push({ row: 1, field: 'name', reason: 'required', detail: 'the header has no name column' });
  if (columns.has('connection') !== columns.has('external_id')) {
    errors.push({ row: 1, field: columns.has('connection') ? 'external_id' : 'connection', reason: 'required', detail: 'a device takes both connection and external_id columns' });
  }
  return { columns, errors };
}

/** Each row on its own, and against the rows before it. */
function checkRows(records: readonly { line: number; fields: string[] }[], columns: Map<Column, number>): { rows: ImportRow[]; errors: ImportRowError[] } {
  const rows: ImportRow[] = [];
  const errors: ImportRowError[] = [];
  const vins = new Map<string, number>();
  const devices = new Map<string, number>();
  for (const { line, fields } of records) {
    const at = (column: Column) => (columns.has(column) ? (fields[columns.get(column)!] ?? '').trim() : '');
    const error = (field: Column | null, reason: string, detail: string) => errors.push({ row: line, field, reason, detail });
    if (fields.length !== columns.size) {
      error(null, 'column_count', `the row has ${fields.length} fields; the header has ${columns.size}`);
      continue;
    }
    const before = errors.length;
    const name = nameSchema.safeParse(at('name'));
    if (!name.success) error('name', at('name') === '' ? 'required' : 'invalid', `name ${name.error.issues[0]?.message ?? 'is invalid'}`);
    let vin: string | null = null;
    if (at('vin') !== '') {
      const parsed = vinSchema.safeParse(at('vin'));
      if (!parsed.success) error('vin', 'invalid', `vin ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
      else if (vins.has(parsed.data)) error('vin', 'duplicate_in_file', `the same VIN as row ${vins.get(parsed.data)}`);
      else vins.set((vin = parsed.data), line);
    }
    let device: ImportRow['device'] = null;
    const connection = at('connection');
    const externalId = at('external_id');
    if (connection !== '' || externalId !== '') {
      if (connection === '') error('connection', 'required', 'a row with an external_id needs its connection');
      else if (!connectionSchema.safeParse(connection).success) error('connection', 'invalid', 'connection is not a connection id (a UUID)');
      if (externalId === '') error('external_id', 'required', 'a row with a connection needs the external_id of its device');
      else if (!externalDeviceIdSchema.safeParse(externalId).success) error('external_id', 'invalid', 'external_id is not a valid external device id (1 to 256 characters, no control characters)');
      if (errors.length === before) {
        device = { connectionId: connection.toLowerCase(), externalId };
        const key = `${device.connectionId}|${externalId}`;
        if (devices.has(key)) {
          error('external_id', 'duplicate_in_file', `the same device as row ${devices.get(key)}`);
          device = null;
        } else devices.set(key, line);
      }
    }
    if (errors.length === before) rows.push({ row: line, name: name.data!, vin, device });
  }
  return { rows, errors };
}

/**
 * Imports the table's records (the first is the header); answers the vehicles created, by row. Throws ImportRefused
 * with every row's errors, having written nothing.
 */
export async function importVehicles(
  db: Database,
  workspaceId: string,
  records: readonly { line: number; fields: string[] }[],
  binding: BindingOptions = {},
): Promise<{ row: number; vehicleId: string }[]> {
  const [header, ...data] = records;
  if (!header) throw new ImportRefused([{ row: 1, field: null, reason: 'no_rows', detail: `the table is empty; its first row names the columns (${importColumns.join(', ')})` }]);
  const { columns, errors: headerErrors } = checkHeader(header.fields);
  if (headerErrors.length > 0) throw new ImportRefused(headerErrors);
  if (data.length === 0) throw new ImportRefused([{ row: 2, field: null, reason: 'no_rows', detail: 'the table has a header and no vehicles' }]);
  if (data.length > importRowLimit) {
    throw new ImportRefused([{ row: data[importRowLimit]!.line, field: null, reason: 'too_many_rows', detail: `at most ${importRowLimit} vehicles per import; split the table` }]);
  }
  const { rows, errors } = checkRows(data, columns);
  const { rows: workspace } = await db.query('SELECT 1 FROM workspaces WHERE id = $1', [workspaceId]);
  if (workspace.length === 0) throw new DomainError('not_found', 'workspace_not_found', `workspace ${workspaceId} does not exist`);
  return db.transaction(async (tx) => {
    const created: { row: number; vehicleId: string }[] = [];
    for (const row of rows) {
      // A row the registry refuses takes back only its own writes, so the other rows' errors are found too.
      await tx.query('SAVEPOINT import_row');
      try {
        const vehicleId = await createVehicle(tx, workspaceId, { name: row.name, vin: row.vin, devices: row.device ? [row.device] : [] }, binding);
        await tx.query('RELEASE SAVEPOINT import_row');
        created.push({ row: row.row, vehicleId });
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        await tx.query('ROLLBACK TO SAVEPOINT import_row');
        errors.push({ row: row.row, field: fieldOfCode[error.code] ?? null, reason: error.code, detail: error.message });
      }
    }
    if (errors.length > 0) throw new ImportRefused(errors.sort((a, b) => a.row - b.row));
    const byRow = new Map(rows.map((r) => [r.row, r]));
    await markDiscoveredBound(
      tx,
      workspaceId,
      created.flatMap(({ row, vehicleId }) => {
        const device = byRow.get(row)!.device;
        return device ? [{ ...device, vehicleId }] : [];
      }),
    );
    return created;
  });
}
