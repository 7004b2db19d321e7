/** Freshness and health: one workspace's roll-up (its key or admin), every workspace's (admin). */
import { z } from 'zod';
import type { Database } from '../../db/database.ts';
import { loadWorkspaceHealth } from '../../health/health-queries.ts';
import { notFound } from '../../errors.ts';
import { problemResponses } from '../problem.ts';
import { workspaceHealthSchema, wsParams } from '../schemas.ts';
import type { TypedApp } from '../typed-app.ts';

export function registerHealthRoutes(app: TypedApp, { db, clock }: { db: Database; clock: () => number }): void {
  app.get(
    '/v1/workspaces/:ws/health',
    {
      config: { access: 'workspace' },
      schema: {
        summary: 'Workspace health: ok, degraded, failing or disabled, with the reasons, vehicle freshness counts and connection health',
        description: 'Computed at query time: a vehicle turns stale the moment its sync age passes the threshold.',
        tags: ['health'],
        params: wsParams,
        response: { 200: workspaceHealthSchema, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const [health] = await loadWorkspaceHealth(db, [request.params.ws], clock());
      if (!health) throw notFound('workspace', request.params.ws);
      reply.header('cache-control', 'no-store');
      return health;
    },
  );

  app.get(
    '/v1/health',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Every workspace's health, worst first",
        tags: ['health'],
        response: {
          200: z.object({
            status: z.enum(['ok', 'degraded', 'failing']).describe('The worst of the enabled workspaces; a disabled one counts for nothing'),
            counts: z.object({ ok: z.number(), degraded: z.number(), failing: z.number(), disabled: z.number() }),
            items: z.array(workspaceHealthSchema),
          }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (_request, reply) => {
      const items = await loadWorkspaceHealth(db, 'all', clock());
      // A disabled workspace was turned off on purpose: last, and no trouble of the fleet's.
      const rank = { failing: 0, degraded: 1, ok: 2, disabled: 3 } as const;
      items.sort((a, b) => rank[a.status] - rank[b.status] || a.name.localeCompare(b.name));
      const counts = { ok: 0, degraded: 0, failing: 0, disabled: 0 };
      for (const item of items) counts[item.status] += 1;
      reply.header('cache-control', 'no-store');
      return { status: counts.failing > 0 ? ('failing' as const) : counts.degraded > 0 ? ('degraded' as const) : ('ok' as const), counts, items };
    },
  );
}
