/**
 * The dashboard: one HTML page, its stylesheet and its script, served by core at `/`. The script is written in
 * TypeScript (src/dashboard) and bundled by `npm run build` into dist/dashboard with the page and the stylesheet;
 * this route only serves those files. Every answer carries a strict content security policy: only this origin's
 * script and styles, no framing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyReply } from 'fastify';
import { HttpProblem } from '../problem.ts';
import type { TypedApp } from '../typed-app.ts';

// The package root is four levels up from src/core/http/routes/ (vitest, tsx) and from dist/core/http/routes/
// (production) alike, so both serve the one build.
const builtDashboardDir = fileURLToPath(new URL('../../../../dist/dashboard/', import.meta.url));

const dashboardSecurityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'geolocation=(), camera=(), microphone=()',
};

interface DashboardFiles {
  html: string;
  css: string;
  script: string;
}

function send(reply: FastifyReply, type: string, body: string) {
  return reply.headers(dashboardSecurityHeaders).header('cache-control', 'no-cache').type(type).send(body);
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

export function registerDashboardRoutes(app: TypedApp, dir = builtDashboardDir): void {
  const files = builtDashboard(dir);
  const options = { config: { access: 'public' as const }, schema: { hide: true } };

  app.get('/', options, async (_request, reply) => send(reply, 'text/html; charset=utf-8', files().html));
  app.get('/dashboard.css', options, async (_request, reply) => send(reply, 'text/css; charset=utf-8', files().css));
  app.get('/dashboard.js', options, async (_request, reply) => send(reply, 'text/javascript; charset=utf-8', files().script));
}
