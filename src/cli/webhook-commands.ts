/**
 * `fleetwire webhooks ...`: a workspace's webhook subscriptions, through a running core's admin API like the other
 * admin commands (FLEETWIRE_CORE_URL, the admin token; docs/API.md, Webhooks). These answer text for a person:
 * `add` shows the signing secret, which core answers this once; `list` is a table of state and delivery health.
 * `--json` prints core's answer as it is, for scripts.
 */
import { eventTypes } from '../core/events/catalogue.ts';
// The shape core's webhook routes answer (a type only: nothing of core is loaded).
import type { Webhook } from '../core/events/webhooks.ts';
import { callCore, CoreProblem, need, parseCommandArgs, UsageError, type AdminConfig } from './admin-commands.ts';
import { cell, second, table } from './text-table.ts';

export const webhookUsage = `
  webhooks add --workspace <ws> --url <url> --types <type>,<type>... [--description <text>]
  webhooks list --workspace <ws>
  webhooks pause|resume|remove --workspace <ws> <webhook>
  webhooks replay --workspace <ws> <webhook> --from <RFC 3339 time, e.g. 2026-12-01T08:00:00Z>|start
              (--json prints core's answer as it is; event types: ${eventTypes.join(', ')})`;

/** `--from start`: before any event, so the replay starts at the oldest one still kept. */
const beforeEveryEvent = '1970-01-01T00:00:00Z';

/** A time to the second, or `-` for none. */
const secondOrNone = (iso: string | null) => (iso === null ? '-' : second(iso));

const events = (n: number) => `${n} ${n === 1 ? 'event' : 'events'}`;

/** `fleetwire.vehicle.soc.crossed` as `vehicle.soc.crossed`: every type starts the same. */
const shortType = (type: string) => type.replace(/^fleetwire\./, '');


function stateOf(w: Webhook): string {
  return w.status === 'active' && w.health.failingSince !== null ? 'active (failing)' : w.status;
}

function listText(workspace: string, items: Webhook[]): string {
  if (items.length === 0) return `no webhook subscriptions in workspace ${workspace}`;
  const rows = items.map((w) => [
    w.id,
    stateOf(w),
    String(w.health.backlog),
    secondOrNone(w.health.lastSuccessAt),
    w.health.lastError ? `${secondOrNone(w.health.lastError.at)} ${cell(w.health.lastError.message, 60)}` : '-',
    cell(w.url),
    w.types.map(shortType).join(','),
  ]);
  const reasons = items.filter((w) => w.statusReason !== null).map((w) => `${w.id}: ${cell(w.statusReason!, 500)}`);
  return [table(['ID', 'STATE', 'BACKLOG', 'LAST SUCCESS', 'LAST ERROR', 'URL', 'TYPES'], rows), ...(reasons.length > 0 ? ['', ...reasons] : [])].join('\n');
}

function addedText(workspace: string, w: Webhook & { secret: string }): string {
  return [
    `webhook ${w.id} added in workspace ${workspace}`,
    `  url:          ${cell(w.url)}`,
    `  types:        ${w.types.join(', ')}`,
    ...(w.description ? [`  description:  ${cell(w.description, 500)}`] : []),
    `  state:        ${stateOf(w)}`,
    `  secret:       ${w.secret}`,
    '',
    'The signing secret is shown this once: core keeps it encrypted and never answers it again. Give it to the',
    "receiver now, which verifies each delivery's webhook-signature with it; if it is lost, remove this subscription",
    'and add a new one.',
  ].join('\n');
}

/** Core's problem `code` (about `about`, if given), with a hint of what the command takes; any other error as it is. */
const hinted =
  (code: string, hint: string, about?: RegExp) =>
  (error: unknown): never => {
    if (error instanceof CoreProblem && error.code === code && (about === undefined || about.test(error.detail))) {
      throw new CoreProblem(error.status, error.code, `${error.detail} (${hint})`);
    }
    throw error;
  };

function parseTypes(text: string | undefined): string[] {
  const types = need(text, '--types <type>,<type>...')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (types.length === 0) throw new UsageError('--types takes event types, comma-separated');
  return types;
}

function parseWebhookArgs(args: string[]) {
  return parseCommandArgs(args, {
    workspace: { type: 'string' },
    url: { type: 'string' },
    types: { type: 'string' },
    description: { type: 'string' },
    from: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
}

const actions = new Set(['add', 'list', 'pause', 'resume', 'replay', 'remove']);

/** Runs `fleetwire webhooks <action> ...`; answers the text to print. */
export async function runWebhookCommand(config: AdminConfig, args: string[]): Promise<string> {
  const { values, positionals } = parseWebhookArgs(args);
  const [action, id, ...extra] = positionals;
  if (action === undefined || !actions.has(action)) throw new UsageError(`unknown command: webhooks ${action ?? ''}`.trim());
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const workspace = need(values.workspace, '--workspace <ws>');
  const base = `/v1/workspaces/${encodeURIComponent(workspace)}/webhooks`;
  const one = () => `${base}/${encodeURIComponent(need(id, 'the webhook id'))}`;
  const noId = () => {
    if (id !== undefined) throw new UsageError(`unexpected argument: ${id}`);
  };
  const print = (answer: unknown, text: () => string) => (values.json ? JSON.stringify(answer, null, 2) : text());

  switch (action) {
    case 'add': {
      noId();
      const body = { url: need(values.url, '--url <url>'), types: parseTypes(values.types), description: values.description };
      // Core names the types it does not know; the ones it does are worth saying along with them.
      const answer = await callCore(config, 'POST', base, body).catch(hinted('unknown_event_type', `event types: ${eventTypes.join(', ')}`));
      return print(answer, () => addedText(workspace, answer as Webhook & { secret: string }));
    }
    case 'list': {
      noId();
      const answer = (await callCore(config, 'GET', base)) as { items: Webhook[] };
      return print(answer, () => listText(workspace, answer.items));
    }
    case 'pause':
    case 'resume': {
      const w = (await callCore(config, 'PATCH', one(), { status: action === 'pause' ? 'paused' : 'active' })) as Webhook;
      return print(w, () =>
        action === 'pause'
          ? `webhook ${w.id} paused with ${events(w.health.backlog)} waiting; nothing kept is lost while it is paused`
          : `webhook ${w.id} resumed: ${events(w.health.backlog)} to deliver, retries start afresh`,
      );
    }
    case 'replay': {
      const from = need(values.from, '--from <RFC 3339 time>|start');
      const answer = (await callCore(config, 'POST', `${one()}/replay`, { from: from === 'start' ? beforeEveryEvent : from }).catch(
        hinted('validation_failed', '--from takes an RFC 3339 time with its offset, e.g. 2026-12-01T08:00:00Z, or start', /\bbody\.from\b/),
      )) as { webhook: Webhook };
      const w = answer.webhook;
      return print(answer, () =>
        [
          `webhook ${w.id} replays from ${from === 'start' ? 'the oldest kept event' : from}: ${events(w.health.backlog)} to deliver again (receivers de-duplicate by webhook-id)`,
          ...(w.status === 'paused' ? ['it is paused: nothing is delivered until it is resumed'] : []),
          ...(w.status === 'ended' ? ['it has ended (its receiver answered 410 Gone): nothing is delivered to it; add a new subscription'] : []),
        ].join('\n'),
      );
    }
    case 'remove': {
      const path = one();
      await callCore(config, 'DELETE', path);
      return values.json ? '' : `webhook ${id} removed`;
    }
    default:
      throw new UsageError(`unknown command: webhooks ${action}`);
  }
}
