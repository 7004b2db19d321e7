/**
 * The dashboard: one HTML page, its stylesheet and its script, served by core at `/`. The script is written in
 * TypeScript (src/dashboard) and bundled by `npm run build` into dist/dashboard with the page and the stylesheet;
 * this route only serves those files, and the page's configuration (the map's tile URL). Every answer carries a
 * strict content security policy: only this origin's script and styles, images from here and the tile server, no
 * framing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyReply } from 'fastify';
import { HttpProblem } from '../problem.ts';
import type { TypedApp } from '../typed-app.ts';

// The package root is four levels up from src/core/http/routes/ (vitest, tsx) and from dist/core/http/routes/
// (production) alike, so both serve the one build.
const builtDashboardDir = fileURLToPath(new URL('../../../../dist/dashboard/', import.meta.url));

/**
 * Where the map's tiles come from, as a CSP source: the template's origin, `{s}` (a subdomain the config allows only
 * as the host's first label) as a wildcard label. Nothing for no template: images from this origin only.
 */
export function tileImageSource(tileUrl: string | undefined): string | undefined {
  if (tileUrl === undefined) return undefined;
  const url = new URL(tileUrl.replace(/^(https?:\/\/)\{s\}\./, '$1fleetwire-subdomain.').replace(/\{[a-z]+\}/g, '0'));
  return `${url.protocol}//${url.host.replace(/^fleetwire-subdomain\./, '*.')}`;
}

function securityHeaders(tileSource: string | undefined): Record<string, string> {
  return {
    'content-security-policy': `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:${tileSource ? ` ${tileSource}` : ''}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'permissions-policy': 'geolocation=(), camera=(), microphone=()',
  };
}

export interface DashboardOptions {
  /** The built dashboard's folder (dist/dashboard); a test points it elsewhere. */
  dir?: string;
  /** The map's tile URL template (FLEETWIRE_MAP_TILE_URL); none: vehicles on a plain background. */
  tileUrl?: string | undefined;
  tileAttribution?: string | undefined;
}

interface DashboardFiles {
  html: string;
  css: string;
  script: string;
}


/** Reads the built files on first request and keeps them; a missing build is an answer, not a failed start. */
function builtDashboard(dir: string): () => DashboardFiles {
  let files: DashboardFiles | undefined;
  return () => {
    if (files) return files;
    try {
      files = {
        html: readFileSync(`${dir}index.html`, 'utf8'),
        css: readFileSync(`${dir}dashboard.css`, 'utf8'),
        script: readFileSync(`${dir}dashboard.js`, 'utf8'),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      throw new HttpProblem(503, 'dashboard_not_built', 'the dashboard is not built: run npm run build');
    }
    return files;
  };
}

export function registerDashboardRoutes(app: TypedApp, { dir = builtDashboardDir, tileUrl, tileAttribution }: DashboardOptions = {}): void {
  const files = builtDashboard(dir);
  const headers = securityHeaders(tileImageSource(tileUrl));
  const send = (reply: FastifyReply, type: string, body: string) => reply.headers(headers).header('cache-control', 'no-cache').type(type).send(body);
  const options = { config: { access: 'public' as const }, schema: { hide: true } };
  // What the page needs to know of the deployment before anyone signs in; nothing secret.
  const pageConfig = JSON.stringify({ map: { tileUrl: tileUrl ?? null, attribution: tileAttribution ?? null } });

  app.get('/', options, async (_request, reply) => send(reply, 'text/html; charset=utf-8', files().html));
  app.get('/dashboard.css', options, async (_request, reply) => send(reply, 'text/css; charset=utf-8', files().css));
  app.get('/dashboard.js', options, async (_request, reply) => send(reply, 'text/javascript; charset=utf-8', files().script));
  app.get('/dashboard-config.json', options, async (_request, reply) => send(reply, 'application/json; charset=utf-8', pageConfig));
}
