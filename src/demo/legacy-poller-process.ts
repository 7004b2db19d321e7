/**
 * The demo's legacy poller as the separate system it stands for: `fleetwire legacy-poller` in a child process of
 * its own, reaching core over HTTP only. Its tokens go through the environment (never the command line, where `ps`
 * shows them); its log lines go to the demo's output. An IPC channel ties it to the demo: when the demo ends, even
 * killed outright, the poller sees the channel close and stops (src/cli.ts).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging.ts';

/** bin/fleetwire.js, from src/demo/ and from dist/demo/ alike. */
const fleetwireBin = fileURLToPath(new URL('../../bin/fleetwire.js', import.meta.url));

export interface LegacyPollerProcessOptions {
  /** The arguments after `fleetwire legacy-poller`. */
  args: string[];
  serviceToken: string;
  samsaraToken: string;
  logLevel: string;
  dataDir: string;
  logger: Logger;
}

export interface LegacyPollerProcess {
  readonly pid: number | undefined;
  /** SIGTERM, SIGKILL after 10 s; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export function startLegacyPollerProcess(options: LegacyPollerProcessOptions): LegacyPollerProcess {
  const child = spawn(process.execPath, [fleetwireBin, 'legacy-poller', ...options.args], {
    env: {
      FLEETWIRE_SERVICE_TOKEN: options.serviceToken,
      FLEETWIRE_LEGACY_SAMSARA_TOKEN: options.samsaraToken,
      FLEETWIRE_LOG_LEVEL: options.logLevel,
      FLEETWIRE_DATA_DIR: options.dataDir,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let stopping = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      if (!stopping) options.logger.warn({ 'process.pid': child.pid, 'process.exit.code': code, signal }, 'demo: the legacy poller exited');
      resolve();
    });
    // Not started at all (no such file, say): the demo goes on without it, and says so.
    child.once('error', (error) => {
      options.logger.warn({ err: error }, 'demo: the legacy poller could not be started');
      resolve();
    });
  });
  let stopped: Promise<void> | undefined;
  return {
    pid: child.pid,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(kill);
        }
      })();
      return stopped;
    },
  };
}
