#!/usr/bin/env node
// The `fleetwire` command: runs the TypeScript sources through tsx's loader, so a clone works right after install.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
