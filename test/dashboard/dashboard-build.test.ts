/**
 * The dashboard route serves the build (dist/dashboard, made by npm run build): without one, core still starts
 * and the dashboard answers a problem that says what to do, rather than failing at start.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { HttpProblem, problem } from '../../src/core/http/problem.ts';
import { registerDashboardRoutes, tileImageSource, type DashboardOptions } from '../../src/core/http/routes/dashboard.ts';

async function dashboardApp(options: DashboardOptions = {}) {
  const app = Fastify().withTypeProvider<ZodTypeProvider>();
  // The same mapping as core's error handler, for the one error this route throws.
  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof HttpProblem) return reply.code(error.status).send(problem(error.status, error.code, error.message));
    throw error;
  });
  registerDashboardRoutes(app, options);
  await app.ready();
  return app;
}

describe('dashboard route', () => {
  it('serves the built page, stylesheet and script with their types', async () => {
    const app = await dashboardApp();
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<script type="module" src="/dashboard.js">');
    const script = await app.inject({ url: '/dashboard.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    // Bundled JavaScript, not the TypeScript source.
    expect(script.body).not.toMatch(/^\s*(interface|type) \w+/m);
    expect((await app.inject({ url: '/dashboard.css' })).headers['content-type']).toMatch(/^text\/css/);
    await app.close();
  });

  it('tells the page its tile URL, and lets images come from that tile server only', async () => {
    const plain = await dashboardApp();
    expect((await plain.inject({ url: '/dashboard-config.json' })).json()).toEqual({ map: { tileUrl: null, attribution: null } });
    expect((await plain.inject({ url: '/' })).headers['content-security-policy']).toContain("img-src 'self' data:;");
    await plain.close();

    const tileUrl = 'https://{s}.tile.example.org/{z}/{x}/{y}.png';
    const tiled = await dashboardApp({ tileUrl, tileAttribution: '© Example contributors' });
    expect((await tiled.inject({ url: '/dashboard-config.json' })).json()).toEqual({ map: { tileUrl, attribution: '© Example contributors' } });
    expect((await tiled.inject({ url: '/' })).headers['content-security-policy']).toContain("img-src 'self' data: https://*.tile.example.org;");
    await tiled.close();
    expect(tileImageSource('http://127.0.0.1:8081/tiles/{z}/{x}/{y}.png')).toBe('http://127.0.0.1:8081');
  });

  it('answers 503 dashboard_not_built when there is no build', async () => {
    const app = await dashboardApp({ dir: `${mkdtempSync(join(tmpdir(), 'fleetwire-no-dashboard-'))}/` });
    for (const url of ['/', '/dashboard.js', '/dashboard.css']) {
      const answer = await app.inject({ url });
      expect(answer.statusCode).toBe(503);
      expect(answer.json()).toMatchObject({ code: 'dashboard_not_built', detail: expect.stringContaining('run npm run build') });
    }
    await app.close();
  });
});
