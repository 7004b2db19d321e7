/**
 * The architecture's boundaries, checked on every lint run (DESIGN §1, STYLE practice 6).
 * A forbidden import fails the build.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'canonical-is-a-leaf',
      comment: 'The canonical model is shared by every path; it depends on nothing of ours.',
      severity: 'error',
      from: { path: '^src/canonical/' },
      to: { path: '^src/(core|providers|stream|sim|cli)' },
    },
    {
      name: 'ingest-knows-no-transport',
      comment: 'The ingest handler and health rules never import HTTP, providers, the stream runtime or simulators.',
      severity: 'error',
      from: { path: '^src/core/(ingest|health)/' },
      to: { path: ['^src/core/http/', '^src/providers/', '^src/stream/', '^src/sim/', '^node_modules/fastify'] },
    },
    {
      name: 'providers-never-touch-the-store',
      comment: 'A provider maps wire payloads to canonical readings; persistence is core\'s.',
      severity: 'error',
      from: { path: '^src/providers/' },
      to: { path: ['^src/core/', '^src/stream/', '^node_modules/(pg|@electric-sql)/'] },
    },
    {
      name: 'stream-holds-no-database',
      comment: 'The stream runtime reaches core over HTTP only.',
      severity: 'error',
      from: { path: '^src/stream/' },
      to: { path: ['^src/core/', '^node_modules/(pg|pg-boss|@electric-sql)/'] },
    },
    {
      name: 'core-never-calls-stream',
      comment: 'The scheduled poll path never hops through the stream runtime.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: ['^src/stream/', '^src/sim/'] },
    },
    {
      name: 'production-never-reaches-demo-or-sim',
      comment:
        'Production code (core, stream, canonical model, providers, config, logging, the admin commands) never reaches the demo ' +
        'or a simulator, directly or through any chain of imports: only `fleetwire demo` and `fleetwire sim` load them.',
      severity: 'error',
      from: { path: ['^src/(core|stream|canonical|providers|cli)/', '^src/(config|logging)\\.ts$'] },
      to: { path: '^src/(demo|sim)/', reachable: true },
    },
    {
      name: 'src-never-reaches-dev-tools',
      comment:
        'Production runs the compiled build (npm run build): nothing under src/ may reach tsx or esbuild, which are ' +
        'devDependencies (npm ci --omit=dev leaves them out). The dashboard is bundled by scripts/build.mjs.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^node_modules/(tsx|esbuild|@esbuild)/', reachable: true },
    },
    {
      name: 'dashboard-is-browser-code',
      comment: 'The dashboard runs in the browser and reads the public API; it imports nothing of the server.',
      severity: 'error',
      from: { path: '^src/dashboard/' },
      to: { path: '^src/(?!dashboard/)' },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      from: { orphan: true, pathNot: ['\\.d\\.ts$', '(^|/)\\.[^/]+\\.(js|cjs|mjs|ts|json)$', '^src/dashboard/dashboard\\.ts$'] },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
