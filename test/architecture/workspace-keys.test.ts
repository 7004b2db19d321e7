/**
 * The schema can be distributed by workspace (docs/ARCHITECTURE.md, "Scale-out"): read from the catalog of a freshly
 * migrated database, every primary key, unique index and foreign key of every table leads with `workspace_id` (a
 * partition is its parent's business), but for the global tables of table-placement.ts, and a foreign key leads to
 * the distribution column of the table it references (co-located) or to a reference table. A table added without
 * that fails here until it is keyed by its workspace or named, with its reason, in table-placement.ts and in the
 * document.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/core/db/database.ts';
import { ensureHistoryPartitions } from '../../src/core/db/history-partitions.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { distributionColumn, globalTables, type Placement } from './table-placement.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  // A partition or two, to show they are left to their parent.
  await ensureHistoryPartitions(database.db, [Date.now(), Date.now() + 86_400_000]);
});
afterAll(async () => {
  await database.drop();
});

interface TableRow {
  table: string;
  workspace_type: string | null;
  workspace_not_null: boolean | null;
}

interface KeyRow {
  table: string;
  name: string;
  kind: 'primary key' | 'unique index' | 'foreign key';
  columns: string[];
  referenced_table: string | null;
  referenced_columns: string[] | null;
}

/** The tables of the schema on the search path that are not partitions, with their `workspace_id` column if any. */
async function tablesOf(sql: Sql): Promise<TableRow[]> {
  const { rows } = await sql.query<TableRow>(
    `SELECT c.relname AS table, format_type(a.atttypid, a.atttypmod) AS workspace_type, a.attnotnull AS workspace_not_null
       FROM pg_class c
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'workspace_id' AND NOT a.attisdropped
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY 1`,
  );
  return rows;
}

/**
 * Every unique index (primary keys and unique constraints among them) and every foreign key of those tables, with
 * their columns in key order; an expression in an index key is named `(expression)`.
 */
async function keysOf(sql: Sql): Promise<KeyRow[]> {
  const { rows } = await sql.query<KeyRow>(
    `SELECT c.relname AS table, i.relname AS name,
            CASE WHEN x.indisprimary THEN 'primary key' ELSE 'unique index' END AS kind,
            ARRAY(SELECT COALESCE(a.attname, '(expression)')
                    FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                   WHERE k.n <= x.indnkeyatts
                   ORDER BY k.n)::text[] AS columns,
            NULL AS referenced_table, NULL::text[] AS referenced_columns
       FROM pg_index x
       JOIN pg_class c ON c.oid = x.indrelid
       JOIN pg_class i ON i.oid = x.indexrelid
      WHERE c.relnamespace = current_schema()::regnamespace AND NOT c.relispartition AND x.indisunique
     UNION ALL
     SELECT c.relname, f.conname, 'foreign key',
            ARRAY(SELECT a.attname FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum ORDER BY k.n)::text[],
            r.relname,
            ARRAY(SELECT a.attname FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum ORDER BY k.n)::text[]
       FROM pg_constraint f
       JOIN pg_class c ON c.oid = f.conrelid
       JOIN pg_class r ON r.oid = f.confrelid
      WHERE c.relnamespace = current_schema()::regnamespace AND NOT c.relispartition AND f.contype = 'f'
      ORDER BY 1, 2`,
  );
  return rows;
}

/** What keeps the schema from being distributed by workspace, one line each; empty when nothing does. */
async function distributionProblems(sql: Sql): Promise<string[]> {
  const problems: string[] = [];
  const tables = await tablesOf(sql);
  const names = new Set(tables.map((t) => t.table));
  for (const name of Object.keys(globalTables)) {
    if (!names.has(name)) problems.push(`${name}: named a global table in table-placement.ts, but the schema has no such table`);
  }
  for (const t of tables) {
    if (globalTables[t.table]) continue;
    if (t.workspace_type === null) problems.push(`${t.table}: has no workspace_id column to be distributed by`);
    else if (t.workspace_type !== 'uuid' || !t.workspace_not_null) {
      problems.push(`${t.table}: workspace_id is ${t.workspace_type}${t.workspace_not_null ? '' : ' and nullable'}, not uuid NOT NULL (co-location needs one type; a row without it has no shard)`);
    }
  }
  for (const key of await keysOf(sql)) {
    const leading = distributionColumn(key.table);
    if (leading === undefined) continue;
    const where = `${key.table}: ${key.kind} ${key.name} (${key.columns.join(', ')})`;
    if (key.columns[0] !== leading) {
      problems.push(`${where} does not lead with ${leading}`);
      continue;
    }
    if (key.kind !== 'foreign key') continue;
    const target = key.referenced_table!;
    const targetPlacement = globalTables[target]?.placement ?? 'distributed';
    if (targetPlacement === 'coordinator-local') {
      problems.push(`${where} references ${target}, which stays on the coordinator: a distributed table can reference a distributed or reference table only`);
    } else if (targetPlacement === 'distributed' && key.referenced_columns![0] !== distributionColumn(target)) {
      problems.push(`${where} references ${target} (${key.referenced_columns!.join(', ')}), not by its distribution column first: the rows would not be co-located`);
    }
  }
  return problems;
}

/** The placement of each table named in docs/ARCHITECTURE.md's "Scale-out" table. */
function documentedPlacements(): Map<string, { placement: Placement; distributedBy?: string }> {
  const doc = readFileSync(new URL('../../docs/ARCHITECTURE.md', import.meta.url), 'utf8');
  const start = doc.indexOf('\n## Scale-out: distributed PostgreSQL and NATS JetStream clusters\n');
  expect(start, 'docs/ARCHITECTURE.md has its "Scale-out" section').toBeGreaterThan(0);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const placements = new Map<string, { placement: Placement; distributedBy?: string }>();
  for (const match of section.matchAll(/^\| `([a-z_]+)` \| ([^|]+) \|/gm)) {
    const cell = match[2]!.trim();
    const distributed = /^distributed by `([a-z_]+)`/.exec(cell);
    if (distributed) placements.set(match[1]!, { placement: 'distributed', distributedBy: distributed[1]! });
    else if (cell === 'reference' || cell === 'coordinator-local') placements.set(match[1]!, { placement: cell });
    else throw new Error(`docs/ARCHITECTURE.md names ${match[1]} with a placement the test does not know: ${cell}`);
  }
  return placements;
}

describe('workspace keys', () => {
  it('every primary key, unique index and foreign key leads with workspace_id, but for the named global tables', async () => {
    expect(await distributionProblems(database.db)).toEqual([]);
  });

  it('finds a table added without a workspace key', async () => {
    await database.db.exec(`
      CREATE TABLE architecture_probe (id uuid PRIMARY KEY, workspace_id uuid NOT NULL REFERENCES workspaces (id), code text);
      CREATE UNIQUE INDEX architecture_probe_code ON architecture_probe (code, workspace_id);
      CREATE TABLE architecture_probe_tenantless (id uuid PRIMARY KEY)`);
    try {
      expect((await distributionProblems(database.db)).sort()).toEqual([
        'architecture_probe: primary key architecture_probe_pkey (id) does not lead with workspace_id',
        'architecture_probe: unique index architecture_probe_code (code, workspace_id) does not lead with workspace_id',
        'architecture_probe_tenantless: has no workspace_id column to be distributed by',
        'architecture_probe_tenantless: primary key architecture_probe_tenantless_pkey (id) does not lead with workspace_id',
      ]);
    } finally {
      await database.db.exec('DROP TABLE architecture_probe; DROP TABLE architecture_probe_tenantless');
    }
  });

  it('names the same global tables, with the same placement, as docs/ARCHITECTURE.md', () => {
    const inCode = new Map(
      Object.entries(globalTables).map(([name, t]) => [name, t.distributedBy === undefined ? { placement: t.placement } : { placement: t.placement, distributedBy: t.distributedBy }]),
    );
    expect(documentedPlacements()).toEqual(inCode);
  });
});
