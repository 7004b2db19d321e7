// Runs before `npm start` and `npm test`: installs the locked dependencies when a fresh clone has none yet, so
// each of those is one command on a new machine. An existing install is left alone.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  console.log('Installing dependencies (npm ci) ...');
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
}
