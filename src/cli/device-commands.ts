/**
 * `fleetwire devices ...` and `fleetwire vehicles import`: onboarding from what providers report, through a running
 * core's API like the other admin commands (FLEETWIRE_CORE_URL, the admin token; docs/API.md, Discovered devices).
 * `discovered` is a table of the devices nobody bound; `bind`, `ignore`, `unignore` and `bind-matching` decide
 * about them; `vehicles import` sends a CSV table, all of it or nothing, and prints every refused row. `--json`
 * prints core's answer as it is, for scripts.
 */
import { readFileSync } from 'node:fs';
// The shapes core answers (types only: nothing of core is loaded).
import type { BindMatchingResult, DiscoveredDevice } from '../core/registry/discovered-devices.ts';
import type { ImportRowError } from '../core/registry/vehicle-import.ts';
import { cell as textCell, second, table } from './text-table.ts';
import { callCore, CoreProblem, need, parseCommandArgs, UsageError, type AdminConfig } from './admin-commands.ts';

export const deviceUsage = `
  devices discovered --workspace <ws> [--status pending|ignored|bound] [--connection <connection>]
  devices bind --workspace <ws> --connection <connection> <external id> (--vehicle <vehicle> | --name <name> [--vin <vin>])
  devices ignore|unignore --workspace <ws> --connection <connection> <external id>
  devices bind-matching --workspace <ws> --connection <connection> [--prefix <text>] [--name-template <text with {externalId}>] [--dry-run]
  vehicles import --workspace <ws> <file.csv>|-   (columns name,vin,connection,external_id; all rows or none)`;

/** A cell of a device table: a provider's ids and values, kept short. */
const cell = (text: string, max = 60) => textCell(text, max);

/** `soc_pct=76 odometer_km=1204.5 location=52.52,13.40`: what the device sends, short enough for a row. */
function sampleText(sample: DiscoveredDevice['sample']): string {
  const parts = Object.entries(sample).map(([signal, { value }]) => {
    if (value !== null && typeof value === 'object' && 'lat' in value && 'lon' in value) {
      const { lat, lon } = value as { lat: number; lon: number };
      return `${signal}=${lat.toFixed(4)},${lon.toFixed(4)}`;
    }
    return `${signal}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
  });
  return cell(parts.join(' '), 80);
}

function discoveredText(workspace: string, status: string, page: { items: DiscoveredDevice[]; nextCursor: string | null }): string {
  if (page.items.length === 0) return `no ${status} discovered devices in workspace ${workspace}`;
  const rows = page.items.map((d) => [
    d.connectionId,
    cell(d.externalId),
    d.status,
    String(d.readingCount),
    second(d.lastSeenAt),
    d.vehicleId ?? '-',
    sampleText(d.sample),
  ]);
  const more = page.nextCursor ? ['', `more than ${page.items.length}: narrow with --connection, or read the API's pages`] : [];
  return [table(['CONNECTION', 'EXTERNAL ID', 'STATUS', 'READINGS', 'LAST SEEN', 'VEHICLE', 'SAMPLE'], rows), ...more].join('\n');
}

function parseDeviceArgs(args: string[]) {
  return parseCommandArgs(args, {
    workspace: { type: 'string' },
    connection: { type: 'string' },
    status: { type: 'string' },
    vehicle: { type: 'string' },
    name: { type: 'string' },
    vin: { type: 'string' },
    prefix: { type: 'string' },
    'name-template': { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
}

const actions = new Set(['discovered', 'bind', 'ignore', 'unignore', 'bind-matching']);

/** Runs `fleetwire devices <action> ...`; answers the text to print. */
export async function runDeviceCommand(config: AdminConfig, args: string[]): Promise<string> {
  const { values, positionals } = parseDeviceArgs(args);
  const [action, externalId, ...extra] = positionals;
  if (action === undefined || !actions.has(action)) throw new UsageError(`unknown command: devices ${action ?? ''}`.trim());
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const workspace = need(values.workspace, '--workspace <ws>');
  const base = `/v1/workspaces/${encodeURIComponent(workspace)}/discovered-devices`;
  const print = (answer: unknown, text: () => string) => (values.json ? JSON.stringify(answer, null, 2) : text());
  const device = () => ({ connectionId: need(values.connection, '--connection <connection>'), externalId: need(externalId, 'the external id of the device') });
  const noDevice = () => {
    if (externalId !== undefined) throw new UsageError(`unexpected argument: ${externalId}`);
  };

  switch (action) {
    case 'discovered': {
      noDevice();
      const status = values.status ?? 'pending';
      const query = new URLSearchParams({ status, limit: '1000', ...(values.connection ? { connectionId: values.connection } : {}) });
      const page = (await callCore(config, 'GET', `${base}?${query}`)) as { items: DiscoveredDevice[]; nextCursor: string | null };
      return print(page, () => discoveredText(workspace, status, page));
    }
    case 'bind': {
      const target = device();
      if ((values.vehicle === undefined) === (values.name === undefined)) throw new UsageError('bind takes --vehicle <vehicle> (an existing one) or --name <name> (a new one)');
      if (values.vehicle !== undefined && values.vin !== undefined) throw new UsageError('--vin is for a new vehicle (--name)');
      const body = values.vehicle !== undefined ? { ...target, vehicleId: values.vehicle } : { ...target, vehicle: { name: values.name!, ...(values.vin ? { vin: values.vin } : {}) } };
      const answer = (await callCore(config, 'POST', `${base}/bind`, body)) as { vehicleId: string; created: boolean };
      return print(answer, () => `device ${cell(target.externalId)} bound to ${answer.created ? 'new ' : ''}vehicle ${answer.vehicleId}`);
    }
    case 'ignore':
    case 'unignore': {
      const target = device();
      const answer = await callCore(config, 'POST', `${base}/${action}`, target);
      return print(answer, () =>
        action === 'ignore'
          ? `device ${cell(target.externalId)} ignored: its updates are dropped before ingest and only counted`
          : `device ${cell(target.externalId)} pending again: its updates are refused unknown_device until it is bound`,
      );
    }
    case 'bind-matching': {
      noDevice();
      const body = {
        connectionId: need(values.connection, '--connection <connection>'),
        ...(values.prefix !== undefined ? { externalIdPrefix: values.prefix } : {}),
        ...(values['name-template'] !== undefined ? { nameTemplate: values['name-template'] } : {}),
        dryRun: values['dry-run'],
      };
      const answer = (await callCore(config, 'POST', `${base}/bind-matching`, body)) as BindMatchingResult;
      return print(answer, () => bindMatchingText(answer, values['dry-run']));
    }
    default:
      throw new UsageError(`unknown command: devices ${action}`);
  }
}

function bindMatchingText(answer: BindMatchingResult, dryRun: boolean): string {
  const lines = [
    `${dryRun ? 'would bind' : 'bound'} ${answer.bound.length} device${answer.bound.length === 1 ? '' : 's'}${dryRun ? ' (dry run: nothing written)' : ''}`,
    ...answer.bound.map((b) => `  ${cell(b.externalId)}${b.vehicleId ? ` -> vehicle ${b.vehicleId}` : ''}`),
  ];
  if (answer.skipped.length > 0) lines.push(`skipped ${answer.skipped.length}:`, ...answer.skipped.map((s) => `  ${cell(s.externalId)}: ${s.reason}`));
  if (answer.remaining > 0) lines.push(`${answer.remaining} more match: run it again`);
  return lines.join('\n');
}

/** Runs `fleetwire vehicles import --workspace <ws> <file.csv>`: the table goes to core as text/csv. */
export async function runVehicleImport(config: AdminConfig, args: string[]): Promise<string> {
  const { values, positionals } = parseDeviceArgs(args);
  const [file, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const workspace = need(values.workspace, '--workspace <ws>');
  const csv = readFileSync(need(file, 'the CSV file (or - for standard input)') === '-' ? 0 : file!, 'utf8');
  const answer = (await sendCsv(config, `/v1/workspaces/${encodeURIComponent(workspace)}/vehicles:import`, csv)) as { created: { row: number; vehicleId: string }[] };
  return values.json
    ? JSON.stringify(answer, null, 2)
    : [`imported ${answer.created.length} vehicle${answer.created.length === 1 ? '' : 's'} into workspace ${workspace}`, ...answer.created.map((c) => `  row ${c.row}: vehicle ${c.vehicleId}`)].join('\n');
}

/** POSTs a CSV body; a refused import comes back as a CoreProblem whose detail lists every row's errors. */
async function sendCsv(config: AdminConfig, path: string, csv: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${config.coreUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${config.secrets.adminToken}`, 'content-type': 'text/csv' }, body: csv });
  } catch {
    throw new Error(`core is not reachable at ${config.coreUrl}: start it with \`fleetwire core\` or set FLEETWIRE_CORE_URL`);
  }
  const text = await response.text();
  let parsed: { code?: unknown; detail?: unknown; errors?: ImportRowError[] } | null = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    if (response.ok) throw new Error(`${config.coreUrl}${path} answered ${response.status} with a body that is not JSON`);
  }
  if (response.ok) return parsed;
  const detail = typeof parsed?.detail === 'string' ? parsed.detail : text.slice(0, 200);
  const rows = (parsed?.errors ?? []).map((e) => `  row ${e.row}${e.field ? ` ${e.field}` : ''}: ${e.reason}: ${cell(e.detail, 200)}`);
  throw new CoreProblem(response.status, typeof parsed?.code === 'string' ? parsed.code : '', [detail, ...rows].join('\n'));
}
