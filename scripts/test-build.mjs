// Vitest's global setup: tests spawn bin/fleetwire.js, which runs dist/, and core serves the dashboard from
// dist/dashboard/, so a test run (npm test, or npx vitest on some files) first brings the build up to date.
import { ensureBuild } from './build.mjs';

export default async function setup() {
  await ensureBuild();
}
