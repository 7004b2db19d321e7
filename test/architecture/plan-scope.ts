/**
 * Whether a statement stays within the workspaces it names, judged from PostgreSQL's plan of it:
 * `EXPLAIN (VERBOSE, FORMAT JSON)` with the statement's own parameters, which the planner folds into the plan as
 * constants (an unnamed statement gets a custom plan), so a `($1::uuid[] IS NULL OR w.id = ANY($1))` given NULL
 * shows as no filter at all. VERBOSE qualifies every column with its range entry's alias, unique within the plan.
 *
 * The rule. A range entry is *pinned* when
 *  1. one of its conditions (Index Cond, Recheck Cond, Filter, TID Cond, or a join's Hash Cond, Merge Cond, Join
 *     Filter, anywhere in the plan) has, as a top-level conjunct, its distribution column equal to a constant:
 *     `v.workspace_id = '…'::uuid` or `= ANY ('{…}'::uuid[])`; or
 *  2. such a conjunct equates its distribution column with a pinned entry's (`d.workspace_id = v.workspace_id`,
 *     `w.id = c.workspace_id`), in either direction; or
 *  3. it is not a table: a function or VALUES scan over constants and pinned entries only (`unnest($1::uuid[])` of
 *     the ingest batch's workspace ids), or a CTE or subquery scan whose plan reads no global table and in which
 *     every distributed table is pinned; or
 *  4. it is a partition, named in the plan by its parent's alias with a suffix, and the parent's alias is pinned.
 * A statement is scoped when every scan of a distributed table (any scan node naming it or one of its partitions;
 * the target of an INSERT is routed by the rows' own workspace_id and is no scan) is pinned. An OR, a comparison
 * with another column, or an equality inside a function is no pin. Its one leniency is rule 3: a derived source's
 * `workspace_id` is trusted to be one of the columns it read (no query here renames another column to it).
 *
 * This is the precondition of Citus's shard pruning (a filter on the distribution column, carried across joins on
 * it); it is checked on plain PostgreSQL and PGlite, whose plans differ in shape but not in their conditions.
 */

export interface Distribution {
  /** The column each distributed table is distributed by. */
  distributionColumn(table: string): string | undefined;
  /** The table a partition belongs to; the name itself for a table that is no partition. */
  rootOf(table: string): string;
}

export interface UnpinnedScan {
  table: string;
  alias: string;
  node: string;
  conditions: string[];
}

export type StatementScope =
  | { kind: 'no_table' }
  | { kind: 'global'; tables: string[] }
  | { kind: 'scoped'; tables: string[] }
  | { kind: 'unscoped'; tables: string[]; unpinned: UnpinnedScan[] };

export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Schema?: string;
  Alias?: string;
  'CTE Name'?: string;
  'Subplan Name'?: string;
  'Function Call'?: string;
  'Table Function Call'?: string;
  Plans?: PlanNode[];
  [key: string]: unknown;
}

const conditionKeys = ['Index Cond', 'Recheck Cond', 'Filter', 'TID Cond', 'Hash Cond', 'Merge Cond', 'Join Filter'] as const;

/** Node types that read a relation without being one (their alias is a derived source). */
const derivedScans = new Set(['Function Scan', 'Table Function Scan', 'Values Scan', 'CTE Scan', 'Subquery Scan']);

const identifier = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const columnRef = new RegExp(String.raw`^(${identifier})\.(${identifier})$`);
const constant = String.raw`(?:'(?:[^']|'')*'|\$\d+)(?:::[a-z ]+(?:\[\])?)?`;
const constantOperand = new RegExp(String.raw`^(?:${constant}|ANY \(${constant}\))$`, 'i');

const unquote = (name: string) => (name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name);

/** `text` with its string literals and quoted names blanked, so brackets and words are read outside them only. */
function blankQuoted(text: string): string {
  return text.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, (m) => ' '.repeat(m.length));
}

/** Whether the bracket at 0 closes at the end, in `blank` (a blanked expression). */
function wrapped(blank: string): boolean {
  if (!blank.startsWith('(') || !blank.endsWith(')')) return false;
  let depth = 0;
  for (let i = 0; i < blank.length; i++) {
    if (blank[i] === '(') depth++;
    else if (blank[i] === ')') depth--;
    if (depth === 0 && i < blank.length - 1) return false;
  }
  return true;
}

/** The top-level conjuncts of an EXPLAIN condition, outer brackets removed. */
export function conjuncts(expression: string): string[] {
  let text = expression.trim();
  while (wrapped(blankQuoted(text))) text = text.slice(1, -1).trim();
  const blank = blankQuoted(text);
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < blank.length; i++) {
    if (blank[i] === '(') depth++;
    else if (blank[i] === ')') depth--;
    else if (depth === 0 && blank.startsWith(' AND ', i)) {
      parts.push(text.slice(from, i));
      from = i + 5;
    }
  }
  if (parts.length === 0) return [text];
  parts.push(text.slice(from));
  return parts.flatMap(conjuncts);
}

type Operand = { column: { alias: string; name: string } } | { constant: true } | { other: true };

function operand(text: string): Operand {
  const trimmed = text.trim();
  const ref = columnRef.exec(trimmed);
  if (ref) return { column: { alias: unquote(ref[1]!), name: unquote(ref[2]!) } };
  return constantOperand.test(trimmed) ? { constant: true } : { other: true };
}

/** An `a = b` conjunct split at its one top-level `=`, or undefined. */
function equality(conjunct: string): [Operand, Operand] | undefined {
  const blank = blankQuoted(conjunct);
  let depth = 0;
  let at = -1;
  for (let i = 0; i < blank.length; i++) {
    if (blank[i] === '(') depth++;
    else if (blank[i] === ')') depth--;
    else if (depth === 0 && blank.startsWith(' = ', i)) {
      if (at >= 0) return undefined;
      at = i;
    }
  }
  if (at < 0) return undefined;
  return [operand(conjunct.slice(0, at)), operand(conjunct.slice(at + 3))];
}

/** The aliases `text` (a function call) names columns of. */
function referencedAliases(text: string): string[] {
  const blank = blankQuoted(text);
  const found: string[] = [];
  for (const match of text.matchAll(new RegExp(String.raw`(${identifier})\.(${identifier})`, 'g'))) {
    // Inside a literal: not a reference.
    if (blank.slice(match.index, match.index + match[0].length).trim() === '') continue;
    found.push(unquote(match[1]!));
  }
  return found;
}

interface Source {
  alias: string;
  node: PlanNode;
  /** The table scanned (its root, for a partition), for a scan of a table. */
  table?: string;
  distribution?: string;
  /** For a derived source: the sources it reads; undefined when the plan does not show them (never pinned then). */
  reads?: Source[];
}

export function judgePlan(plan: PlanNode, distribution: Distribution, schemaOf: (schema: string | undefined) => 'tables' | 'catalog' | 'other'): StatementScope {
  const nodes: PlanNode[] = [];
  const collect = (node: PlanNode) => {
    nodes.push(node);
    for (const child of node.Plans ?? []) collect(child);
  };
  collect(plan);

  const touched = new Set<string>();
  let touchesDistributed = false;
  const sources = new Map<string, Source>();
  for (const node of nodes) {
    const relation = node['Relation Name'];
    if (relation !== undefined) {
      const kind = schemaOf(node.Schema);
      const table = kind === 'tables' ? distribution.rootOf(relation) : `${node.Schema}.${relation}`;
      touched.add(table);
      if (kind === 'tables' && distribution.distributionColumn(table) !== undefined) touchesDistributed = true;
      if (node['Node Type'] === 'ModifyTable') continue;
      const column = kind === 'tables' ? distribution.distributionColumn(table) : undefined;
      const alias = node.Alias ?? relation;
      sources.set(alias, { alias, node, table, ...(column ? { distribution: column } : {}) });
    } else if (derivedScans.has(node['Node Type']) && node.Alias !== undefined) {
      sources.set(node.Alias, { alias: node.Alias, node, distribution: 'workspace_id' });
    }
  }
  if (touched.size === 0) return { kind: 'no_table' };
  const tables = [...touched].sort();

  // What each derived source reads: a CTE its subplan, a subquery its own plan, a function the entries it names.
  const sourcesIn = (root: PlanNode): Source[] => {
    const own = root.Alias === undefined ? undefined : sources.get(root.Alias);
    return [...(own?.node === root ? [own] : []), ...(root.Plans ?? []).flatMap(sourcesIn)];
  };
  for (const source of sources.values()) {
    const node = source.node;
    if (source.table !== undefined) continue;
    if (node['Node Type'] === 'CTE Scan') {
      const definition = nodes.find((n) => n['Subplan Name'] === `CTE ${node['CTE Name']}`);
      if (definition) source.reads = sourcesIn(definition);
    } else if (node['Node Type'] === 'Subquery Scan') {
      source.reads = (node.Plans ?? []).flatMap(sourcesIn);
    } else {
      const call = `${node['Function Call'] ?? ''} ${node['Table Function Call'] ?? ''}`;
      source.reads = referencedAliases(call).flatMap((alias) => (alias !== source.alias && sources.has(alias) ? [sources.get(alias)!] : []));
    }
  }

  // Pins and joins on the distribution column, from every condition of the plan.
  const pinned = new Set<string>();
  const joins: [string, string][] = [];
  const isDistributionColumn = (ref: { alias: string; name: string }) => {
    const source = sources.get(ref.alias);
    if (source) return source.distribution === ref.name;
    // An alias with no node of its own: a partitioned table's parent (its partitions carry suffixed aliases).
    return ref.name === 'workspace_id';
  };
  for (const node of nodes) {
    for (const key of conditionKeys) {
      const condition = node[key];
      if (typeof condition !== 'string') continue;
      for (const conjunct of conjuncts(condition)) {
        const sides = equality(conjunct);
        if (!sides) continue;
        const [left, right] = sides;
        if ('column' in left && 'constant' in right && isDistributionColumn(left.column)) pinned.add(left.column.alias);
        else if ('constant' in left && 'column' in right && isDistributionColumn(right.column)) pinned.add(right.column.alias);
        else if ('column' in left && 'column' in right && isDistributionColumn(left.column) && isDistributionColumn(right.column)) {
          joins.push([left.column.alias, right.column.alias]);
        }
      }
    }
  }

  // A derived source is pinned when everything it reads is: no global table, no unpinned scan or source.
  const derivedPinned = (source: Source) =>
    source.reads !== undefined && source.reads.every((read) => (read.table === undefined || read.distribution !== undefined) && pinned.has(read.alias));
  for (let changed = true; changed; ) {
    changed = false;
    const pin = (alias: string) => {
      if (pinned.has(alias)) return;
      pinned.add(alias);
      changed = true;
    };
    for (const [a, b] of joins) {
      if (pinned.has(a)) pin(b);
      if (pinned.has(b)) pin(a);
    }
    for (const source of sources.values()) {
      if (pinned.has(source.alias)) continue;
      if (source.table === undefined && derivedPinned(source)) pin(source.alias);
      const parent = /^(.+)_\d+$/.exec(source.alias)?.[1];
      if (source.table !== undefined && parent !== undefined && !sources.has(parent) && pinned.has(parent)) pin(source.alias);
    }
  }

  // A statement that only inserts into a distributed table is routed by the rows' own workspace_id.
  if (!touchesDistributed) return { kind: 'global', tables };
  const distributedScans = [...sources.values()].filter((s) => s.table !== undefined && s.distribution !== undefined);
  const unpinned = distributedScans
    .filter((s) => !pinned.has(s.alias))
    .map((s) => ({
      table: s.table!,
      alias: s.alias,
      node: s.node['Node Type'],
      conditions: conditionKeys.flatMap((key) => (typeof s.node[key] === 'string' ? [`${key}: ${s.node[key] as string}`] : [])),
    }));
  return unpinned.length === 0 ? { kind: 'scoped', tables } : { kind: 'unscoped', tables, unpinned };
}
