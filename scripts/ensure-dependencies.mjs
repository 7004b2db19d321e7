// Runs before `npm start` and `npm test`: installs the locked dependencies when a fresh clone has none yet, then
// builds dist/ when it is missing or older than the sources (scripts/build.mjs), so each of those is one command
// on a new machine and always runs the current code. With --browser (before `npm test`) it also installs Debian's
// Chromium for the dashboard's browser test when it is missing and this user may install packages. An existing
// install is left alone.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureBuild } from './build.mjs';

if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  console.log('Installing dependencies (npm ci) ...');
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
}

try {
  await ensureBuild();
} catch (error) {
  console.error(`The build failed: ${error.message}`);
  process.exit(1);
}

const chromium = process.env.FLEETWIRE_CHROMIUM ?? '/usr/bin/chromium';
if (process.argv.includes('--browser') && !existsSync(chromium)) {
  const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (canInstall) {
    console.log('Installing Chromium for the browser test (apt-get install chromium) ...');
    try {
      execSync('apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)', {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      console.log('Chromium could not be installed; the browser test will say so.');
    }
  } else {
    console.log(`No Chromium at ${chromium}: install it (apt-get install -y chromium) or the browser test will fail.`);
  }
}
