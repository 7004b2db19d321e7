// `npm run build`: compiles src/ (not the dashboard, not the tests) with tsc into dist/, and bundles the dashboard
// (src/dashboard: its script with esbuild, the map library included; its page copied; its stylesheet after the map
// library's) into dist/dashboard/. Production runs dist/ (bin/fleetwire.js) and serves dist/dashboard/.
//
// dist/.build-stamp.json holds a hash of what the build was made from (every file under src/, the tsconfigs,
// package-lock.json and this script). `ensureBuild()` (before `npm start` and `npm test`, and vitest's global
// setup) rebuilds when the hash differs. That rebuild skips type checking, as vitest and tsx do: `npm run
// typecheck` and `npm run build` fail on type errors, a test run does not.
//
// A build is made beside dist/ and swapped in whole, so a process started from dist/ meanwhile (a test's child,
// another engineer's test run) never sees half a build, and files of moved or deleted sources do not linger.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const stampFile = join(dist, '.build-stamp.json');
const inputFiles = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json', 'scripts/build.mjs'];

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

/** A hash of every input of the build, paths and contents. */
export function inputsHash() {
  const files = [...filesUnder(join(root, 'src')), ...inputFiles.map((file) => join(root, file)).filter((file) => existsSync(file))];
  const hash = createHash('sha256');
  for (const file of files.map((f) => relative(root, f)).sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(root, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function builtFrom() {
  try {
    return JSON.parse(readFileSync(stampFile, 'utf8')).inputs;
  } catch {
    return undefined;
  }
}

function devTool(specifier) {
  try {
    return createRequire(import.meta.url).resolve(specifier);
  } catch {
    return undefined;
  }
}

/** Puts a finished build in place of dist/, whatever another build did meanwhile. */
function swapIn(next) {
  for (let attempt = 0; ; attempt += 1) {
    const old = `${dist}.old-${process.pid}-${attempt}`;
    try {
      renameSync(dist, old);
    } catch (error) {
      if (error.code !== 'ENOENT') throw error;
    }
    try {
      renameSync(next, dist);
      rmSync(old, { recursive: true, force: true });
      return;
    } catch (error) {
      rmSync(old, { recursive: true, force: true });
      // Another build swapped its dist in between our two renames: take it out again.
      if (!['ENOTEMPTY', 'EEXIST'].includes(error.code) || attempt >= 5) throw error;
    }
  }
}

/**
 * Builds dist/. With `typeCheck` (npm run build) a type error fails the build; without it tsc only emits.
 * Returns the input hash the build was made from.
 */
export async function build({ typeCheck = true } = {}) {
  const tsc = devTool('typescript/bin/tsc');
  const esbuild = await import('esbuild').catch(() => undefined);
  if (!tsc || !esbuild) throw new Error('the build needs the dev dependencies (typescript, esbuild): run npm ci');
  const inputs = inputsHash();
  const next = `${dist}.next-${process.pid}`;
  rmSync(next, { recursive: true, force: true });
  try {
    const args = [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next, ...(typeCheck ? [] : ['--noCheck'])];
    const compiled = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
    if (compiled.status !== 0) throw new Error(`tsc failed (exit ${compiled.status ?? compiled.signal})`);

    const dashboardOut = join(next, 'dashboard');
    await esbuild.build({
      entryPoints: [join(root, 'src/dashboard/dashboard.ts')],
      outfile: join(dashboardOut, 'dashboard.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'warning',
    });
    copyFileSync(join(root, 'src/dashboard/index.html'), join(dashboardOut, 'index.html'));
    // The map's stylesheet goes first, so ours can adjust it; one file keeps the page's style-src to this origin.
    // Vehicles are circle markers (SVG), so none of the stylesheet's marker images is ever fetched or shipped.
    const leafletCss = readFileSync(createRequire(import.meta.url).resolve('leaflet/dist/leaflet.css'), 'utf8');
    writeFileSync(join(dashboardOut, 'dashboard.css'), `${leafletCss}\n${readFileSync(join(root, 'src/dashboard/dashboard.css'), 'utf8')}`);

    writeFileSync(join(next, '.build-stamp.json'), `${JSON.stringify({ inputs, typeChecked: typeCheck, builtAt: new Date().toISOString() }, null, 2)}\n`);
    swapIn(next);
    return inputs;
  } finally {
    rmSync(next, { recursive: true, force: true });
  }
}

/**
 * Rebuilds dist/ when it is missing or was built from other inputs; returns whether it built. Without the dev
 * dependencies (npm ci --omit=dev) an existing build is used as it is.
 */
export async function ensureBuild() {
  const stamp = builtFrom();
  if (stamp === inputsHash()) return false;
  if (existsSync(join(dist, 'cli.js')) && !devTool('typescript/bin/tsc')) {
    console.log('dist/ is older than the sources, and the dev dependencies to rebuild it are not installed: using it as it is.');
    return false;
  }
  console.log(stamp === undefined ? 'Building dist/ (npm run build) ...' : 'Rebuilding dist/: the sources changed since it was built ...');
  await build({ typeCheck: false });
  return true;
}

// `node scripts/build.mjs`: a full build, type-checked. `--if-stale`: `ensureBuild()` (the benchmarks use it).
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  try {
    if (process.argv.includes('--if-stale')) await ensureBuild();
    else {
      await build({ typeCheck: true });
      console.log('Built dist/.');
    }
  } catch (error) {
    console.error(`build: ${error.message}`);
    process.exit(1);
  }
}
