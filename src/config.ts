/**
 * Configuration: the only module that reads `process.env`. Parsed once at start, validated with messages an
 * operator can act on, then frozen.
 *
 * Each command says what it is (its purpose), which decides the secrets it needs. Secrets are generated only for
 * the embedded demo, and for core on the embedded database (one process by nature): they are kept in
 * `<data dir>/secrets.json`, so a restart keeps them. Everything else refuses to start without the secrets it needs
 * and names the variable: core on PostgreSQL (several processes must share one credential key and the tokens),
 * the stream runtime and the demo's legacy poller (the service token core checks), the admin commands (the admin
 * token). Those read a secrets file an embedded core on the same data dir wrote, but never write one.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(0, 'must be 0..65535')
  .max(65535, 'must be 0..65535');

const token = z
  .string()
  .min(24, 'must be at least 24 characters (generate one with: openssl rand -base64 32)')
  .max(512, 'must be at most 512 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

const secretKey = z.string().refine((value) => decodeSecretKey(value) !== undefined, {
  message: 'must be 32 bytes, as 64 hex characters or base64 (generate one with: openssl rand -base64 32)',
});

/** An address or a CIDR range, IPv4 or IPv6. */
function isAddressOrRange(text: string): boolean {
  const [address, bits, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

const addressList = z
  .string()
  .transform((text) => text.split(',').map((part) => part.trim()).filter((part) => part.length > 0))
  .refine((list) => list.every(isAddressOrRange), { message: 'must be a comma-separated list of IP addresses or CIDR ranges (e.g. 10.0.0.0/8, 127.0.0.1)' });

const postgresUrl = z
  .string()
  .refine((value) => /^postgres(ql)?:\/\//.test(value), { message: 'must start with postgres:// or postgresql://' });

/** Where core publishes events to NATS, as the client takes it: credentials apart from the addresses. */
export interface NatsConnectionSettings {
  /** host:port of each server, without credentials. */
  readonly servers: readonly string[];
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** A token (a URL's `token@host` form, which carries no password). */
  readonly token: string | undefined;
}

/**
 * One or more `nats://[user:password@]host[:port]` (or bare `host[:port]`), comma-separated. The client takes
 * credentials as options, not inside a server address, so they are taken out here; every server must carry the same
 * ones. Messages never repeat the value, which may hold a password.
 */
const natsServers = z.string().transform((text, ctx): NatsConnectionSettings => {
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
  const servers: string[] = [];
  const credentials = new Set<string>();
  let user: string | undefined;
  let password: string | undefined;
  for (const [i, part] of parts.entries()) {
    let url: URL | undefined;
    try {
      url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(part) ? part : `nats://${part}`);
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'nats:' || url.hostname === '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
      ctx.addIssue({ code: 'custom', message: `server ${i + 1} must be nats://host:port (optionally nats://user:password@host:port); TLS is used when the server offers it` });
      continue;
    }
    servers.push(`${url.hostname}:${url.port || '4222'}`);
    credentials.add(`${url.username}:${url.password}`);
    try {
      user = url.username === '' ? undefined : decodeURIComponent(url.username);
      password = url.password === '' ? undefined : decodeURIComponent(url.password);
    } catch {
      ctx.addIssue({ code: 'custom', message: `server ${i + 1}: the credentials are not valid percent-encoding` });
    }
  }
  if (parts.length === 0) ctx.addIssue({ code: 'custom', message: 'must name at least one server, e.g. nats://127.0.0.1:4222' });
  if (credentials.size > 1) ctx.addIssue({ code: 'custom', message: 'every server must carry the same credentials (or none)' });
  const token = user !== undefined && password === undefined ? user : undefined;
  return Object.freeze({ servers: Object.freeze(servers), user: token === undefined ? user : undefined, password, token });
});

/**
 * A map tile URL template as Leaflet takes it: http(s), `{z}`, `{x}` and `{y}` in it, and `{s}` (a subdomain) at
 * most as the host's first label. The dashboard's content security policy lets images come from its origin only.
 */
const tileUrlTemplate = z.string().refine(
  (text) => {
    if (!['{z}', '{x}', '{y}'].every((part) => text.includes(part))) return false;
    const host = text.replace(/^https?:\/\//, '').split('/')[0] ?? '';
    if (/[{}]/.test(host.replace(/^\{s\}\./, ''))) return false;
    try {
      const url = new URL(text.replace(/^(https?:\/\/)\{s\}\./, '$1s.').replace(/\{[a-z]+\}/g, '0'));
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '';
    } catch {
      return false;
    }
  },
  { message: 'must be an http(s) tile URL template with {z}, {x} and {y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png ({s} only as the first label of the host)' },
);

/**
 * How far before a device's binding its backfill reaches (FLEETWIRE_BACKFILL_LOOKBACK_HOURS); code that binds
 * devices without a configuration at hand (the demo's seed, tests) uses this too.
 */
export const defaultBackfillLookbackHours = 24;

/** Letters, digits, `_` and `-`: safe in a NATS subject token and a JetStream stream name alike. */
const natsName = /^[A-Za-z0-9_-]+$/;

const environmentSchema = z.object({
  FLEETWIRE_PORT: port.default(8080),
  FLEETWIRE_HOST: z.string().min(1).default('127.0.0.1'),
  FLEETWIRE_DATA_DIR: z.string().min(1).default('./.fleetwire'),
  DATABASE_URL: postgresUrl.optional(),
  FLEETWIRE_DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  FLEETWIRE_ADMIN_TOKEN: token.optional(),
  FLEETWIRE_SERVICE_TOKEN: token.optional(),
  FLEETWIRE_SECRET_KEY: secretKey.optional(),
  FLEETWIRE_NEW_SECRET_KEY: secretKey.optional(),
  FLEETWIRE_TRUSTED_PROXIES: addressList.default([]),
  FLEETWIRE_STREAM_LEASE_SECONDS: z.coerce.number().int().min(5).max(600).default(30),
  FLEETWIRE_LOG_LEVEL: z.enum(logLevels).default('info'),
  FLEETWIRE_CORE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  FLEETWIRE_SCHEDULER: z.enum(['embedded', 'external'], { error: 'must be embedded or external' }).default('embedded'),
  FLEETWIRE_TICK_SECONDS: z.coerce.number().int().min(1).max(300).default(5),
  FLEETWIRE_POLL_WORKERS: z.coerce.number().int().min(1).max(64).default(4),
  FLEETWIRE_POLL_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  FLEETWIRE_MAINTENANCE_MINUTES: z.coerce.number().int().min(0).max(1440).default(60),
  FLEETWIRE_BACKFILL_LOOKBACK_HOURS: z.coerce.number().int('must be a whole number of hours').min(0).max(720).default(defaultBackfillLookbackHours),
  FLEETWIRE_BACKFILL_MAX_DAYS: z.coerce.number().int('must be a whole number of days').min(1).max(366).default(31),
  FLEETWIRE_STREAM_COALESCE_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  FLEETWIRE_STREAM_BUFFER_READINGS: z.coerce.number().int().min(1000).max(10_000_000).default(100_000),
  FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  FLEETWIRE_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  FLEETWIRE_NATS_URL: natsServers.optional(),
  FLEETWIRE_NATS_STREAM: z.string().max(128, 'must be at most 128 characters').regex(natsName, 'must be letters, digits, _ or - (a JetStream stream name)').default('FLEETWIRE_EVENTS'),
  FLEETWIRE_NATS_SUBJECT_PREFIX: z
    .string()
    .max(128, 'must be at most 128 characters')
    .refine((value) => value.split('.').every((token) => natsName.test(token)), {
      message: 'must be NATS subject tokens (letters, digits, _ or -) joined by dots, without wildcards, e.g. fleetwire',
    })
    .default('fleetwire'),
  FLEETWIRE_MAP_TILE_URL: tileUrlTemplate.optional(),
  FLEETWIRE_MAP_TILE_ATTRIBUTION: z.string().max(300, 'must be at most 300 characters').optional(),
  FLEETWIRE_LEGACY_SAMSARA_TOKEN: z
    .string()
    .max(512, 'must be at most 512 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  FLEETWIRE_JOB_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')
    .default('fleetwire_jobs'),
});

export type LogLevel = (typeof logLevels)[number];

export type SecretName = 'adminToken' | 'serviceToken' | 'secretKey';

interface SecretValues {
  readonly adminToken: string;
  readonly serviceToken: string;
  /** 32-byte key for AES-256-GCM encryption of provider credentials. */
  readonly secretKey: Buffer;
}

const secretVariables: Record<SecretName, string> = {
  adminToken: 'FLEETWIRE_ADMIN_TOKEN',
  serviceToken: 'FLEETWIRE_SERVICE_TOKEN',
  secretKey: 'FLEETWIRE_SECRET_KEY',
};

/**
 * What a command is, and so which secrets it needs and whether missing ones may be generated: `always` for the
 * demo, `embedded` when the database is PGlite (one process by nature), `never` otherwise.
 */
export const purposes = {
  demo: { needs: ['adminToken', 'serviceToken', 'secretKey'], generate: 'always', what: 'the demo' },
  core: { needs: ['adminToken', 'serviceToken', 'secretKey'], generate: 'embedded', what: 'core' },
  stream: { needs: ['serviceToken'], generate: 'never', what: 'the stream runtime' },
  admin: { needs: ['adminToken'], generate: 'never', what: 'the admin commands' },
  database: { needs: [], generate: 'never', what: 'this command' },
  'rotate-key': { needs: ['secretKey'], generate: 'never', what: 'the key rotation' },
  'legacy-poller': { needs: ['serviceToken'], generate: 'never', what: 'the legacy poller' },
} as const satisfies Record<string, { needs: readonly SecretName[]; generate: 'always' | 'embedded' | 'never'; what: string }>;

export type Purpose = keyof typeof purposes;
type Needed<P extends Purpose> = (typeof purposes)[P]['needs'][number];

/** The secrets a purpose needs, and which of them this start generated (so the operator can be told). */
export type Secrets<N extends SecretName = SecretName> = { readonly [K in N]: SecretValues[K] } & { readonly generated: readonly SecretName[] };

export interface Config<P extends Purpose = 'core'> {
  readonly purpose: P;
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly database: { readonly kind: 'pglite'; readonly dataDir: string } | { readonly kind: 'postgres'; readonly url: string; readonly poolSize: number };
  readonly logLevel: LogLevel;
  /** Where a client of core (the CLI, the stream runtime) finds it. */
  readonly coreUrl: string;
  readonly secrets: Secrets<Needed<P>>;
  /** The key provider credentials are re-encrypted under by `fleetwire rotate-key` (FLEETWIRE_NEW_SECRET_KEY). */
  readonly newSecretKey: Buffer | undefined;
  /** Proxies whose X-Forwarded-For names the client (FLEETWIRE_TRUSTED_PROXIES); empty trusts no header. */
  readonly trustedProxies: readonly string[];
  readonly polling: {
    /** embedded: this process ticks; external: an EventBridge Scheduler rule posts scheduled events. */
    readonly scheduler: 'embedded' | 'external';
    readonly tickSeconds: number;
    /** Workspace polls this process runs at once. */
    readonly workers: number;
    /** Connections of one workspace polled at once. */
    readonly connectionConcurrency: number;
    /** Where the shared job queue keeps its tables. */
    readonly jobSchema: string;
  };
  /** How often retention runs in this process; 0 leaves it to `fleetwire maintain` (cron, say). */
  readonly maintenanceMinutes: number;
  readonly backfill: {
    /** A newly bound device is backfilled from this many hours before its binding; 0 turns that off. */
    readonly lookbackHours: number;
    /** The longest period one backfill request may cover. */
    readonly maxRangeDays: number;
  };
  readonly webhooks: {
    /**
     * Whether webhooks may target private, loopback and link-local addresses (FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE):
     * off by default, on for the demo, whose receiver runs on loopback.
     */
    readonly allowPrivate: boolean;
    /** How long a receiver has to answer a delivery. */
    readonly timeoutMs: number;
  };
  readonly nats: {
    /** Where core publishes every event (FLEETWIRE_NATS_URL); undefined: publishing to NATS is off. */
    readonly connection: NatsConnectionSettings | undefined;
    /** The JetStream stream the events are stored in (made when missing). */
    readonly stream: string;
    /** Subjects are `<prefix>.<workspace id>.<event type>`. */
    readonly subjectPrefix: string;
  };
  readonly dashboard: {
    /** The map's tile URL template (FLEETWIRE_MAP_TILE_URL); undefined: the map draws vehicles on a plain background. */
    readonly tileUrl: string | undefined;
    /** The credit the tile provider asks for (FLEETWIRE_MAP_TILE_ATTRIBUTION), shown on the map as text. */
    readonly tileAttribution: string | undefined;
  };
  readonly legacyPoller: {
    /** The Samsara API token `fleetwire legacy-poller` polls with (FLEETWIRE_LEGACY_SAMSARA_TOKEN). */
    readonly samsaraToken: string | undefined;
  };
  readonly stream: {
    /** Per-vehicle coalescing window; 0 passes every reading on as it comes. */
    readonly coalesceMs: number;
    /** Readings the delivery buffer holds before it drops the oldest. */
    readonly bufferReadings: number;
    /** How long core's lease on a stream connection lasts unless renewed. */
    readonly leaseSeconds: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function decodeSecretKey(value: string): Buffer | undefined {
  const trimmed = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes;
  }
  return undefined;
}

interface StoredSecrets {
  adminToken?: string;
  serviceToken?: string;
  secretKey?: string;
}

function readStoredSecrets(file: string): StoredSecrets {
  if (!existsSync(file)) return {};
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new ConfigError([`${file} is not a JSON object`]);
  return parsed as StoredSecrets;
}

const makers: Record<SecretName, () => string> = {
  adminToken: () => `fwa_${randomBytes(32).toString('base64url')}`,
  serviceToken: () => `fws_${randomBytes(32).toString('base64url')}`,
  secretKey: () => randomBytes(32).toString('base64'),
};

function missingMessage(name: SecretName, purpose: Purpose, database: Config['database']['kind']): string {
  const variable = secretVariables[name];
  const what = purposes[purpose].what;
  if (purpose === 'core' && database === 'postgres') {
    return `${variable} is not set: core on PostgreSQL generates no secrets; give every core process the same FLEETWIRE_ADMIN_TOKEN, FLEETWIRE_SERVICE_TOKEN and FLEETWIRE_SECRET_KEY`;
  }
  if (name === 'serviceToken') return `${variable} is not set: ${what} needs the service token core was started with`;
  if (name === 'adminToken') return `${variable} is not set: ${what} need the admin token core was started with`;
  return `${variable} is not set: ${what} needs the key provider credentials are encrypted with`;
}

/**
 * Takes each secret the purpose needs from the environment, else from `<dataDir>/secrets.json`, else (where the
 * purpose may) generates it and stores it there (mode 0600). A secret given in the environment is never written to
 * disk. A secret that is needed and cannot be had stops the start with a message naming its variable.
 */
function resolveSecrets(
  dataDir: string,
  purpose: Purpose,
  database: Config['database']['kind'],
  given: Partial<Record<SecretName, string | undefined>>,
): Secrets {
  const file = join(dataDir, 'secrets.json');
  const stored = readStoredSecrets(file);
  const { needs, generate } = purposes[purpose];
  const mayGenerate = generate === 'always' || (generate === 'embedded' && database === 'pglite');
  const generated: SecretName[] = [];
  const next: StoredSecrets = { ...stored };
  const problems: string[] = [];
  const values: Partial<Record<SecretName, string>> = {};

  for (const name of needs as readonly SecretName[]) {
    const fromEnv = given[name];
    const kept = stored[name];
    if (fromEnv !== undefined) values[name] = fromEnv;
    else if (kept !== undefined) values[name] = kept;
    else if (mayGenerate) {
      values[name] = makers[name]();
      next[name] = values[name];
      generated.push(name);
    } else problems.push(missingMessage(name, purpose, database));
  }
  if (stored.adminToken !== undefined && !token.safeParse(stored.adminToken).success) problems.push(`${file}: adminToken is not a valid token`);
  if (stored.serviceToken !== undefined && !token.safeParse(stored.serviceToken).success) problems.push(`${file}: serviceToken is not a valid token`);
  const secretKeyBytes = values.secretKey === undefined ? undefined : decodeSecretKey(values.secretKey);
  if (values.secretKey !== undefined && secretKeyBytes === undefined) problems.push(`${file}: secretKey is not 32 bytes of hex or base64`);
  if (problems.length > 0) throw new ConfigError(problems);

  if (generated.length > 0) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return Object.freeze({
    ...(values.adminToken === undefined ? {} : { adminToken: values.adminToken }),
    ...(values.serviceToken === undefined ? {} : { serviceToken: values.serviceToken }),
    ...(secretKeyBytes === undefined ? {} : { secretKey: secretKeyBytes }),
    generated: Object.freeze(generated),
  }) as Secrets;
}

/** Parses and validates the environment for `purpose`. Throws ConfigError listing every problem at once. */
export function loadConfig<P extends Purpose = 'core'>(env: NodeJS.ProcessEnv = process.env, purpose: P = 'core' as P): Config<P> {
  const relevant = Object.fromEntries(
    Object.keys(environmentSchema.shape).map((key) => [key, env[key] === '' ? undefined : env[key]]),
  );
  const parsed = environmentSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = parsed.data;
  const dataDir = resolve(e.FLEETWIRE_DATA_DIR);
  const database =
    e.DATABASE_URL === undefined
      ? Object.freeze({ kind: 'pglite' as const, dataDir: join(dataDir, 'pgdata') })
      : Object.freeze({ kind: 'postgres' as const, url: e.DATABASE_URL, poolSize: e.FLEETWIRE_DB_POOL_SIZE });
  const secrets = resolveSecrets(dataDir, purpose, database.kind, {
    adminToken: e.FLEETWIRE_ADMIN_TOKEN,
    serviceToken: e.FLEETWIRE_SERVICE_TOKEN,
    secretKey: e.FLEETWIRE_SECRET_KEY,
  });
  const connectHost = e.FLEETWIRE_HOST === '0.0.0.0' || e.FLEETWIRE_HOST === '::' ? '127.0.0.1' : e.FLEETWIRE_HOST;
  const hostInUrl = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
  return Object.freeze({
    purpose,
    port: e.FLEETWIRE_PORT,
    host: e.FLEETWIRE_HOST,
    dataDir,
    database,
    logLevel: e.FLEETWIRE_LOG_LEVEL,
    coreUrl: e.FLEETWIRE_CORE_URL ?? `http://${hostInUrl}:${e.FLEETWIRE_PORT}`,
    secrets: secrets as Secrets<Needed<P>>,
    newSecretKey: e.FLEETWIRE_NEW_SECRET_KEY === undefined ? undefined : decodeSecretKey(e.FLEETWIRE_NEW_SECRET_KEY),
    trustedProxies: Object.freeze([...e.FLEETWIRE_TRUSTED_PROXIES]),
    polling: Object.freeze({
      scheduler: e.FLEETWIRE_SCHEDULER,
      tickSeconds: e.FLEETWIRE_TICK_SECONDS,
      workers: e.FLEETWIRE_POLL_WORKERS,
      connectionConcurrency: e.FLEETWIRE_POLL_CONCURRENCY,
      jobSchema: e.FLEETWIRE_JOB_SCHEMA,
    }),
    maintenanceMinutes: e.FLEETWIRE_MAINTENANCE_MINUTES,
    backfill: Object.freeze({ lookbackHours: e.FLEETWIRE_BACKFILL_LOOKBACK_HOURS, maxRangeDays: e.FLEETWIRE_BACKFILL_MAX_DAYS }),
    webhooks: Object.freeze({
      allowPrivate: e.FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE === undefined ? purpose === 'demo' : e.FLEETWIRE_WEBHOOKS_ALLOW_PRIVATE === 'true',
      timeoutMs: e.FLEETWIRE_WEBHOOK_TIMEOUT_MS,
    }),
    nats: Object.freeze({
      connection: e.FLEETWIRE_NATS_URL,
      stream: e.FLEETWIRE_NATS_STREAM,
      subjectPrefix: e.FLEETWIRE_NATS_SUBJECT_PREFIX,
    }),
    dashboard: Object.freeze({ tileUrl: e.FLEETWIRE_MAP_TILE_URL, tileAttribution: e.FLEETWIRE_MAP_TILE_ATTRIBUTION }),
    legacyPoller: Object.freeze({ samsaraToken: e.FLEETWIRE_LEGACY_SAMSARA_TOKEN }),
    stream: Object.freeze({
      coalesceMs: e.FLEETWIRE_STREAM_COALESCE_MS,
      bufferReadings: e.FLEETWIRE_STREAM_BUFFER_READINGS,
      leaseSeconds: e.FLEETWIRE_STREAM_LEASE_SECONDS,
    }),
  });
}

/** The process's configuration for `purpose`. */
export function configFor<P extends Purpose>(purpose: P): Config<P> {
  return loadConfig(process.env, purpose);
}

/** Names of the variables, for documentation and `fleetwire --help`. */
export const environmentVariables = Object.keys(environmentSchema.shape);
