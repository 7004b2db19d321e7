/**
 * `npm run bench:startup`: what a process of the compiled build (dist/, as bin/fleetwire.js runs it) costs to
 * start, against the same command through tsx on the sources (how production ran before the build), in the same
 * run. Each is a separate process on loopback:
 *
 * - `fleetwire --help`: from spawn to exit; peak RSS from /usr/bin/time (when present).
 * - `fleetwire core` on PGlite (a data dir migrated beforehand): from spawn until `/readyz` answers 200.
 * - `fleetwire stream` against a core started once for the run: from spawn until `/healthz` answers 200.
 *
 * For the long-running ones the peak RSS is VmHWM from /proc/<pid>/status, read when the process is ready and just
 * before it is stopped. Every figure is the median of BENCH_REPEATS runs (default 5), compiled and tsx taking
 * turns so both see the same machine. Not part of `npm test`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/processes.ts';

const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const root = fileURLToPath(new URL('..', import.meta.url));
const timeBinary = '/usr/bin/time';

type Variant = 'compiled' | 'tsx';
/** How each variant starts the `fleetwire` command. */
const commandOf: Record<Variant, string[]> = {
  compiled: [join(root, 'bin/fleetwire.js')],
  tsx: ['--import', 'tsx', join(root, 'src/cli.ts')],
};

interface Sample {
  ms: number;
  /** Peak resident set, KiB; undefined when it could not be read. */
  peakKib: number | undefined;
}

const children = new Set<ChildProcess>();

function baseEnv(dataDir: string, port: number, secrets: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    FLEETWIRE_DATA_DIR: dataDir,
    FLEETWIRE_HOST: '127.0.0.1',
    FLEETWIRE_PORT: String(port),
    FLEETWIRE_LOG_LEVEL: 'warn',
    ...secrets,
  };
}

function peakOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Stops a child with SIGTERM, SIGKILL after 10 s; resolves when it has exited. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

function start(variant: Variant, args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [...commandOf[variant], ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { child, output: () => text };
}

/** Polls `url` every 10 ms until it answers 200; fails after 60 s or when the process exits first. */
async function until200(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before ${url} answered:\n${output()}`);
    try {
      const answer = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await answer.arrayBuffer();
      if (answer.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${url} did not answer 200 within 60 s:\n${output()}`);
}

async function timeHelp(variant: Variant, env: Record<string, string>): Promise<Sample> {
  const measured = existsSync(timeBinary);
  const rssFile = join(env.FLEETWIRE_DATA_DIR!, `help-rss-${variant}`);
  const argv = [...commandOf[variant], '--help'];
  const began = performance.now();
  const child = measured
    ? spawn(timeBinary, ['-o', rssFile, '-f', '%M', process.execPath, ...argv], { cwd: root, env, stdio: 'ignore' })
    : spawn(process.execPath, argv, { cwd: root, env, stdio: 'ignore' });
  children.add(child);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const ms = performance.now() - began;
  children.delete(child);
  if (code !== 0) throw new Error(`${variant} --help exited ${code}`);
  const peakKib = measured ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) : undefined;
  return { ms, peakKib };
}

async function timeServer(variant: Variant, args: string[], env: Record<string, string>, readyPath: string): Promise<Sample> {
  const began = performance.now();
  const { child, output } = start(variant, args, env);
  try {
    await until200(`http://127.0.0.1:${env.FLEETWIRE_PORT}${readyPath}`, child, output);
    const ms = performance.now() - began;
    // Settled: what the process holds once it is up, read just before it is stopped.
    await new Promise((resolve) => setTimeout(resolve, 250));
    return { ms, peakKib: peakOf(child.pid) };
  } finally {
    await stop(child);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function summary(samples: Sample[]): { ms: number; mib: number | undefined } {
  const peaks = samples.map((s) => s.peakKib).filter((k): k is number => k !== undefined && Number.isFinite(k));
  return { ms: median(samples.map((s) => s.ms)), mib: peaks.length === samples.length ? median(peaks) / 1024 : undefined };
}

async function main(): Promise<void> {
  // The compiled side runs dist/: bring it up to date with the sources first.
  const built = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('the build failed');

  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-startup-'));
  const secrets = {
    FLEETWIRE_ADMIN_TOKEN: `fwa_bench_${randomBytes(16).toString('hex')}`,
    FLEETWIRE_SERVICE_TOKEN: `fws_bench_${randomBytes(16).toString('hex')}`,
    FLEETWIRE_SECRET_KEY: randomBytes(32).toString('base64'),
  };
  const coreDataDir = mkdtempSync(join(tmpdir(), 'fleetwire-bench-startup-core-'));
  const help: Record<Variant, Sample[]> = { compiled: [], tsx: [] };
  const core: Record<Variant, Sample[]> = { compiled: [], tsx: [] };
  const stream: Record<Variant, Sample[]> = { compiled: [], tsx: [] };
  const results = {
    'fleetwire --help': help,
    'fleetwire core (PGlite, until /readyz 200)': core,
    'fleetwire stream (until /healthz 200)': stream,
  };
  let sharedCore: ChildProcess | undefined;
  try {
    const migrated = spawnSync(process.execPath, [...commandOf.compiled, 'migrate'], { cwd: root, env: baseEnv(dataDir, 0, secrets), encoding: 'utf8' });
    if (migrated.status !== 0) throw new Error(`migrate failed:\n${migrated.stdout}${migrated.stderr}`);

    // The core every stream process reaches, on its own data dir: the timed core runs open the other one.
    const corePort = await freePort();
    const shared = start('compiled', ['core'], baseEnv(coreDataDir, corePort, secrets));
    sharedCore = shared.child;
    await until200(`http://127.0.0.1:${corePort}/readyz`, shared.child, shared.output);
    const coreUrl = `http://127.0.0.1:${corePort}`;

    for (let round = 0; round < repeats; round += 1) {
      // Alternate which variant goes first, so neither always runs on a warmer machine.
      const order: Variant[] = round % 2 === 0 ? ['compiled', 'tsx'] : ['tsx', 'compiled'];
      for (const variant of order) {
        help[variant].push(await timeHelp(variant, baseEnv(dataDir, 0, secrets)));
        core[variant].push(await timeServer(variant, ['core'], baseEnv(dataDir, await freePort(), secrets), '/readyz'));
        const streamEnv = { ...baseEnv(dataDir, await freePort(), secrets), FLEETWIRE_CORE_URL: coreUrl };
        stream[variant].push(await timeServer(variant, ['stream'], streamEnv, '/healthz'));
      }
      process.stdout.write(`round ${round + 1}/${repeats} done\n`);
    }
  } finally {
    if (sharedCore) await stop(sharedCore);
    await Promise.all([...children].map((child) => stop(child)));
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(coreDataDir, { recursive: true, force: true });
  }

  const mib = (value: number | undefined) => (value === undefined ? 'n/a' : `${value.toFixed(0)} MiB`);
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? 'n/a' : `${Math.round((a / b) * 100)} %`);
  const lines = [
    '',
    `Median of ${repeats} runs each (Node ${process.versions.node}):`,
    '',
    '| Command | Time compiled | Time tsx | Ratio | Peak RSS compiled | Peak RSS tsx | Ratio |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const [name, byVariant] of Object.entries(results)) {
    const compiled = summary(byVariant.compiled);
    const tsx = summary(byVariant.tsx);
    lines.push(
      `| ${name} | ${(compiled.ms / 1000).toFixed(2)} s | ${(tsx.ms / 1000).toFixed(2)} s | ${ratio(compiled.ms, tsx.ms)} | ${mib(compiled.mib)} | ${mib(tsx.mib)} | ${ratio(compiled.mib, tsx.mib)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    await Promise.all([...children].map((child) => stop(child)));
    console.error(error);
    process.exit(1);
  },
);
