/**
 * A PostgreSQL cluster of a test's own (initdb + pg_ctl from /usr/lib/postgresql/<version>/bin, a temp data dir, a
 * free loopback port, trust auth), for tests that restart or stop the server: the shared server other test files
 * use is never touched. initdb refuses to run as root, so as root every command runs as the `postgres` system user.
 *
 * The cluster is stopped and its directory removed by `destroy`, and, should a test process end without calling
 * it, by an exit hook (synchronously, as `exit` handlers must).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes.ts';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  dataDir: string;
  /** `pg_ctl restart -m <mode>`: every connection is cut; resolves once the server accepts connections again. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** The server log, for a failure message. */
  log(): string;
  /** Stops the server (immediate) and removes the data dir; idempotent, never throws. */
  destroy(): Promise<void>;
}

/** The newest PostgreSQL server installed under /usr/lib/postgresql, or undefined when there is none. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => /^\d+(\.\d+)?$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

const asRoot = process.getuid?.() === 0;

/** argv for a PostgreSQL tool, as the `postgres` user when we are root. */
function command(bin: string, tool: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server under /usr/lib/postgresql/<version>/bin');
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dataDir, uid, gid);
  }
  const pgData = join(dataDir, 'data');
  const logFile = join(dataDir, 'server.log');
  const port = await freePort();
  const tool = async (name: string, args: string[], timeoutMs = 60_000) => {
    const [file, argv] = command(bin, name, args);
    await run(file, argv, { timeout: timeoutMs });
  };
  const pgCtl = (args: string[]) => tool('pg_ctl', ['-D', pgData, '-l', logFile, '-w', '-t', '60', ...args]);

  let destroyed = false;
  const stopNowSync = () => {
    if (destroyed) return;
    destroyed = true;
    try {
      const [file, argv] = command(bin, 'pg_ctl', ['-D', pgData, '-m', 'immediate', '-w', '-t', '20', 'stop']);
      execFileSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // Not running.
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', stopNowSync);

  try {
    await tool('initdb', ['-D', pgData, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // Loopback only, its socket in its own directory. fsync off costs nothing here: the server process dies, the
    // machine does not, so written WAL survives in the page cache. Commits stay synchronous: an immediate stop
    // must not lose what was acknowledged.
    writeFileSync(
      join(pgData, 'postgresql.auto.conf'),
      [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dataDir}'`, 'fsync = off', 'full_page_writes = off', 'max_connections = 100', ''].join('\n'),
    );
    if (asRoot) execFileSync('chown', ['postgres:postgres', join(pgData, 'postgresql.auto.conf')]);
    await pgCtl(['start']);
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    stopNowSync();
    process.off('exit', stopNowSync);
    throw new Error(`could not start a private PostgreSQL: ${(error as Error).message}\n${log}`);
  }

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir: pgData,
    restart: (mode = 'fast') => pgCtl(['-m', mode, 'restart']),
    stop: (mode = 'fast') => pgCtl(['-m', mode, 'stop']),
    start: () => pgCtl(['start']),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    destroy: async () => {
      if (destroyed) return;
      try {
        await tool('pg_ctl', ['-D', pgData, '-m', 'immediate', '-w', '-t', '20', 'stop'], 30_000);
      } catch {
        // Already stopped.
      }
      destroyed = true;
      process.off('exit', stopNowSync);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
