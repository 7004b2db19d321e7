/**
 * `fleetwire legacy-poller`: its arguments and tokens, read and checked before anything starts. The poller itself is
 * demo code (src/demo/legacy-poller.ts), which src/cli.ts loads only for this command, so nothing here reaches it.
 * The tokens come from the environment only, never from the command line, where `ps` and shell history show them.
 */
import type { Config } from '../config.ts';
import { need, parseCommandArgs, UsageError } from './admin-commands.ts';

export const legacyPollerUsage = `
  legacy-poller --core-url <url> --workspace <ws> --connection <id> --samsara-url <url> [--interval <s>]
                [--unit-error-factor <n> [--unit-error-signal odometer_km] [--unit-error-device <external id>]...]
                [--lag <s>]
              (a legacy poller: Samsara's feed into core as legacy_poll updates, with an optional defect;
              tokens from FLEETWIRE_SERVICE_TOKEN and FLEETWIRE_LEGACY_SAMSARA_TOKEN; docs/LEGACY-POLLER.md)`;

/** What the command starts the poller with, besides the tokens and the logger. */
export interface LegacyPollerArguments {
  coreUrl: string;
  workspaceId: string;
  connectionId: string;
  samsaraUrl: string;
  intervalMs: number;
  defect?: {
    unitError?: { signal: 'odometer_km'; factor: number; externalIds?: string[] };
    lagMs?: number;
  };
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function httpUrl(text: string, name: string): string {
  try {
    const url = new URL(text);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '') return url.origin + url.pathname.replace(/\/+$/, '');
  } catch {
    // Said below.
  }
  throw new UsageError(`--${name} takes an http(s) URL without credentials`);
}

function id(text: string | undefined, name: string): string {
  const value = need(text, `--${name}`);
  if (!uuid.test(value)) throw new UsageError(`--${name} takes an id (a UUID)`);
  return value;
}

function seconds(text: string | undefined, name: string, options: { min: number }): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < options.min) throw new UsageError(`--${name} takes a number of seconds, at least ${options.min}`);
  return Math.round(n * 1000);
}

export function parseLegacyPollerArgs(args: string[]): LegacyPollerArguments {
  const { values, positionals } = parseCommandArgs(args, {
    'core-url': { type: 'string' },
    workspace: { type: 'string' },
    connection: { type: 'string' },
    'samsara-url': { type: 'string' },
    interval: { type: 'string' },
    'unit-error-factor': { type: 'string' },
    'unit-error-signal': { type: 'string' },
    'unit-error-device': { type: 'string', multiple: true },
    lag: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`legacy-poller takes no argument ${JSON.stringify(positionals[0])}`);
  const factorText = values['unit-error-factor'];
  if (factorText === undefined && (values['unit-error-signal'] !== undefined || values['unit-error-device'] !== undefined)) {
    throw new UsageError('--unit-error-signal and --unit-error-device go with --unit-error-factor');
  }
  let unitError: NonNullable<LegacyPollerArguments['defect']>['unitError'];
  if (factorText !== undefined) {
    const factor = Number(factorText);
    if (factorText.trim() === '' || !Number.isFinite(factor) || factor <= 0) throw new UsageError('--unit-error-factor takes a number above 0, e.g. 0.621371 (miles sent as km)');
    const signal = values['unit-error-signal'] ?? 'odometer_km';
    if (signal !== 'odometer_km') throw new UsageError('--unit-error-signal takes odometer_km');
    unitError = { signal, factor, ...(values['unit-error-device'] ? { externalIds: values['unit-error-device'] } : {}) };
  }
  const lagMs = seconds(values.lag, 'lag', { min: 0 });
  const defect = { ...(unitError ? { unitError } : {}), ...(lagMs ? { lagMs } : {}) };
  return {
    coreUrl: httpUrl(need(values['core-url'], '--core-url'), 'core-url'),
    workspaceId: id(values.workspace, 'workspace'),
    connectionId: id(values.connection, 'connection'),
    samsaraUrl: httpUrl(need(values['samsara-url'], '--samsara-url'), 'samsara-url'),
    intervalMs: seconds(values.interval, 'interval', { min: 0.1 }) ?? 60_000,
    ...(Object.keys(defect).length > 0 ? { defect } : {}),
  };
}

/**
 * The two tokens. The service token is a secret of the configuration (FLEETWIRE_SERVICE_TOKEN, or the secrets file
 * an embedded core wrote), checked when the configuration is read; the Samsara token is this command's alone.
 */
export function legacyPollerTokens(config: Pick<Config<'legacy-poller'>, 'secrets' | 'legacyPoller'>): { serviceToken: string; apiToken: string } {
  const apiToken = config.legacyPoller.samsaraToken;
  if (apiToken === undefined) throw new UsageError('FLEETWIRE_LEGACY_SAMSARA_TOKEN is not set: give the Samsara API token the legacy poller polls with in the environment');
  return { serviceToken: config.secrets.serviceToken, apiToken };
}
