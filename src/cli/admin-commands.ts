/**
 * The admin operations of the CLI. They call a running core's admin API (FLEETWIRE_CORE_URL, default the local
 * one) with the admin token, so the CLI and the API are one code path and work the same against a remote core.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Config } from '../config.ts';

/** What the admin commands need: where core is, and the admin token. */
export type AdminConfig = Pick<Config<'admin'>, 'coreUrl' | 'secrets'>;

export class UsageError extends Error {}

/**
 * A command's arguments, positionals allowed: an unknown option, or one without its value, is a usage error (said
 * with the usage, exit 2), not a crash.
 */
export function parseCommandArgs<const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, allowPositionals: true, options });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Core answered a problem (application/problem+json): its status, stable code and detail, in the message too. */
export class CoreProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${status} ${code}: ${detail}`);
    this.name = 'CoreProblem';
  }
}

/** Calls core's admin API; answers the parsed body (null for none), throws a CoreProblem for a non-2xx answer. */
export async function callCore(config: AdminConfig, method: string, path: string, body?: unknown): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${config.coreUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${config.secrets.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Error(`core is not reachable at ${config.coreUrl}: start it with \`fleetwire core\` or set FLEETWIRE_CORE_URL`);
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // Not core's JSON (a proxy's error page, say): the status and the start of the text say more than a parse error.
    if (response.ok) throw new Error(`${config.coreUrl}${path} answered ${response.status} with a body that is not JSON`);
  }
  if (!response.ok) {
    const p = parsed as { code?: unknown; detail?: unknown } | null;
    const detail = typeof p?.detail === 'string' ? p.detail : text.slice(0, 200);
    throw new CoreProblem(response.status, typeof p?.code === 'string' ? p.code : '', detail);
  }
  return parsed;
}

/** `--options-file`: the connection's provider options (docs/PROVIDERS.md), a JSON object; not secret. */
function readOptions(values: { 'options-file'?: string | undefined }): unknown {
  const file = values['options-file'];
  if (file === undefined) return undefined;
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed;
  } catch {
    throw new UsageError('the options must be a JSON object');
  }
}

function readCredentials(values: { 'credentials-file'?: string | undefined }): unknown {
  const file = values['credentials-file'];
  if (file === undefined) throw new UsageError('give the credentials with --credentials-file <path>, or - for standard input');
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError('the credentials must be a JSON object');
  }
}

const bool = (text: string | undefined, name: string): boolean | undefined => {
  if (text === undefined) return undefined;
  if (text === 'true' || text === 'false') return text === 'true';
  throw new UsageError(`--${name} takes true or false`);
};

const int = (text: string | undefined, name: string): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} takes a whole number`);
  return n;
};

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

export const adminUsage = `
  workspaces list
  workspaces create --name <name>
  workspaces update <workspace> [--name <name>] [--enabled <bool>]
  workspaces delete <workspace> --yes       (everything of the workspace: nothing is kept)
  policy set <workspace> --enabled <bool> --poll-interval <s> --freshness <s> --silent-after <s> --retention-days <d>
  cutover set <workspace> legacy|shadow|core [--reason <text>] [--force]   (to core only when parity meets the gate, or forced with a reason)
  cutover parity <workspace> [--window <hours>h]   (core's polling against the legacy poller's, and the gate's verdict)
  cutover transitions <workspace>           (every change: who, when, from, to, why)
  connections list <workspace>
  connections add <workspace> --provider <name> --transport poll|stream [--base-url <url>] [--label <text>]
                  --credentials-file <path|-> [--options-file <path>]
  connections update <workspace> <connection> [--label <text>] [--enabled <bool>] [--base-url <url>]
                  [--credentials-file <path|->] [--options-file <path>]
  connections remove <workspace> <connection>
  connections backfill <workspace> <connection> --from <RFC 3339 time> [--to <time>] [--device <external id>]...
  backfills list <workspace> [--connection <connection>]
  backfills show <workspace> <job>
  vehicles list <workspace>
  vehicles add <workspace> --name <name> [--vin <vin>] [--device <connection>:<externalId>]...
  vehicles update <workspace> <vehicle> [--name <name>] [--active <bool>]
  vehicles move <workspace> <vehicle> --to <workspace>   (an unbound vehicle, with its history)
  vehicles delete <workspace> <vehicle> --yes            (with its snapshot, history and events)
  health [<workspace>]                      (one workspace's vehicles and connections with their reasons, or every workspace)
  rejections list <workspace>               (each cause with its count and latest example)
  api-keys create <workspace> [--name <name>]
  api-keys list <workspace>
  api-keys revoke <workspace> <key>`;

/** Runs one admin command; answers what to print (JSON), or undefined when `group` is not an admin command. */
export async function runAdminCommand(config: AdminConfig, group: string, args: string[]): Promise<unknown> {
  const { values, positionals } = parseCommandArgs(args, {
      name: { type: 'string' },
      enabled: { type: 'string' },
      'poll-interval': { type: 'string' },
      freshness: { type: 'string' },
      'silent-after': { type: 'string' },
      'retention-days': { type: 'string' },
      provider: { type: 'string' },
      transport: { type: 'string' },
      'base-url': { type: 'string' },
      label: { type: 'string' },
      'credentials-file': { type: 'string' },
      'options-file': { type: 'string' },
      vin: { type: 'string' },
      device: { type: 'string', multiple: true },
      active: { type: 'string' },
      to: { type: 'string' },
      from: { type: 'string' },
      connection: { type: 'string' },
      yes: { type: 'boolean' },
      reason: { type: 'string' },
      force: { type: 'boolean' },
      window: { type: 'string' },
  });
  const [action, ws, id, extra] = positionals;
  const workspace = () => encodeURIComponent(need(ws, '<workspace>'));
  const target = () => encodeURIComponent(need(id, 'the resource id'));
  /** A deletion keeps nothing and cannot be undone: the command says so unless told it is meant. */
  const confirmed = (what: string) => {
    if (values.yes !== true) throw new UsageError(`deleting ${what} keeps nothing of it and cannot be undone: add --yes to do it`);
  };

  // `health <workspace>`: the one command whose first word is the workspace.
  if (group === 'health' && action !== undefined) return callCore(config, 'GET', `/v1/workspaces/${encodeURIComponent(action)}/health`);
  switch (`${group} ${action ?? ''}`) {
    case 'workspaces list':
      return callCore(config, 'GET', '/v1/workspaces');
    case 'workspaces create':
      return callCore(config, 'POST', '/v1/workspaces', { name: need(values.name, '--name') });
    case 'workspaces update':
      return callCore(config, 'PATCH', `/v1/workspaces/${workspace()}`, {
        name: values.name,
        enabled: bool(values.enabled, 'enabled'),
      });
    case 'workspaces delete':
      confirmed(`workspace ${need(ws, '<workspace>')}`);
      await callCore(config, 'DELETE', `/v1/workspaces/${workspace()}`);
      return { deleted: ws };
    case 'policy set':
      return callCore(config, 'PUT', `/v1/workspaces/${workspace()}/telematics-policy`, {
        enabled: need(bool(values.enabled, 'enabled'), '--enabled'),
        pollIntervalSeconds: need(int(values['poll-interval'], 'poll-interval'), '--poll-interval'),
        freshnessThresholdSeconds: need(int(values.freshness, 'freshness'), '--freshness'),
        silentAfterSeconds: need(int(values['silent-after'], 'silent-after'), '--silent-after'),
        retentionDays: need(int(values['retention-days'], 'retention-days'), '--retention-days'),
      });
    case 'cutover set':
      return callCore(config, 'PUT', `/v1/workspaces/${workspace()}/cutover`, {
        mode: need(id, 'legacy, shadow or core'),
        ...(values.reason !== undefined ? { reason: values.reason } : {}),
        ...(values.force === true ? { force: true } : {}),
      });
    case 'cutover parity':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/cutover/parity${values.window !== undefined ? `?window=${encodeURIComponent(values.window)}` : ''}`);
    case 'cutover transitions':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/cutover/transitions`);
    case 'connections list':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/connections`);
    case 'connections add':
      return callCore(config, 'POST', `/v1/workspaces/${workspace()}/connections`, {
        provider: need(values.provider, '--provider'),
        transport: need(values.transport, '--transport'),
        baseUrl: values['base-url'],
        label: values.label,
        credentials: readCredentials(values),
        options: readOptions(values),
      });
    case 'connections update':
      return callCore(config, 'PATCH', `/v1/workspaces/${workspace()}/connections/${target()}`, {
        label: values.label,
        enabled: bool(values.enabled, 'enabled'),
        baseUrl: values['base-url'],
        credentials: values['credentials-file'] === undefined ? undefined : readCredentials(values),
        options: readOptions(values),
      });
    case 'connections remove':
      return callCore(config, 'DELETE', `/v1/workspaces/${workspace()}/connections/${target()}`);
    case 'connections backfill':
      return callCore(config, 'POST', `/v1/workspaces/${workspace()}/connections/${target()}/backfill`, {
        from: need(values.from, '--from <RFC 3339 time>'),
        to: values.to,
        devices: values.device,
      });
    case 'backfills list':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/backfills${values.connection ? `?connectionId=${encodeURIComponent(values.connection)}` : ''}`);
    case 'backfills show':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/backfills/${target()}`);
    case 'vehicles list':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/vehicles?limit=1000`);
    case 'vehicles add':
      return callCore(config, 'POST', `/v1/workspaces/${workspace()}/vehicles`, {
        name: need(values.name, '--name'),
        vin: values.vin,
        devices: (values.device ?? []).map((text) => {
          const at = text.indexOf(':');
          if (at <= 0) throw new UsageError('--device takes <connection id>:<external id>');
          return { connectionId: text.slice(0, at), externalId: text.slice(at + 1) };
        }),
      });
    case 'vehicles update':
      return callCore(config, 'PATCH', `/v1/workspaces/${workspace()}/vehicles/${target()}`, {
        name: values.name,
        active: bool(values.active, 'active'),
      });
    case 'vehicles move':
      return callCore(config, 'POST', `/v1/workspaces/${workspace()}/vehicles/${target()}/move`, { workspaceId: need(values.to, '--to <workspace>') });
    case 'vehicles delete':
      confirmed(`vehicle ${need(id, '<vehicle>')}`);
      await callCore(config, 'DELETE', `/v1/workspaces/${workspace()}/vehicles/${target()}`);
      return { deleted: id };
    case 'health ':
      return callCore(config, 'GET', '/v1/health');
    case 'rejections list':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/rejections`);
    case 'api-keys create':
      return callCore(config, 'POST', `/v1/workspaces/${workspace()}/api-keys`, { name: values.name ?? 'api key' });
    case 'api-keys list':
      return callCore(config, 'GET', `/v1/workspaces/${workspace()}/api-keys`);
    case 'api-keys revoke':
      return callCore(config, 'DELETE', `/v1/workspaces/${workspace()}/api-keys/${target()}`);
    default:
      void extra;
      throw new UsageError(`unknown command: ${group} ${action ?? ''}`.trim());
  }
}

export const adminGroups = new Set(['workspaces', 'policy', 'cutover', 'connections', 'backfills', 'vehicles', 'health', 'rejections', 'api-keys']);
