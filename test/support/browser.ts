/**
 * The browser tests' Chromium: Debian's (/usr/bin/chromium, or FLEETWIRE_CHROMIUM), driven by playwright-core,
 * headless with the flags this machine needs. A missing browser is a clear failure, not a skipped test.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const chromiumPath = process.env.FLEETWIRE_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`the browser test needs Chromium at ${chromiumPath} (apt-get install -y chromium; npm test installs it when it can)`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}
