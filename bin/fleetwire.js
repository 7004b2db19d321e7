#!/usr/bin/env node
// The `fleetwire` command: runs the compiled build (dist/, made by `npm run build`; `npm start` and `npm test`
// build it when the sources changed). Production needs neither TypeScript nor tsx.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('fleetwire: there is no build in dist/: run npm run build');
  process.exit(1);
}
await import(cli.href);
