/**
 * The dashboard: one HTML page, its stylesheet and its script, served by core at `/`. The script is written in
 * TypeScript (src/dashboard) and transpiled once, on first request, so there is no build step. Every answer
 * carries a strict content security policy: only this origin's script and styles, no framing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';
import type { FastifyReply } from 'fastify';
import type { TypedApp } from '../typed-app.ts';

const dashboardDir = fileURLToPath(new URL('../../../dashboard/', import.meta.url));

const dashboardSecurityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'geolocation=(), camera=(), microphone=()',
};

function send(reply: FastifyReply, type: string, body: string) {
  return reply.headers(dashboardSecurityHeaders).header('cache-control', 'no-cache').type(type).send(body);
}

export function registerDashboardRoutes(app: TypedApp): void {
  let script: Promise<string> | undefined;
  const html = readFileSync(`${dashboardDir}index.html`, 'utf8');
  const css = readFileSync(`${dashboardDir}dashboard.css`, 'utf8');
  const options = { config: { access: 'public' as const }, schema: { hide: true } };

  app.get('/', options, async (_request, reply) => send(reply, 'text/html; charset=utf-8', html));
  app.get('/dashboard.css', options, async (_request, reply) => send(reply, 'text/css; charset=utf-8', css));
  app.get('/dashboard.js', options, async (_request, reply) => {
    script ??= transform(readFileSync(`${dashboardDir}dashboard.ts`, 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022' }).then((r) => r.code);
    return send(reply, 'text/javascript; charset=utf-8', await script);
  });
}
