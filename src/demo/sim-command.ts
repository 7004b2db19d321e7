/** `fleetwire sim`: the demo's provider simulators on their own, for a core run separately. */
import { parseArgs } from 'node:util';
import { demoCredentials, demoMigratingAccount, startDemoSimulators, type DemoSimulators } from './simulators.ts';

export async function runSimulators(args: string[]): Promise<DemoSimulators> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      'samsara-port': { type: 'string', default: '8081' },
      'geotab-port': { type: 'string', default: '8082' },
      'traccar-port': { type: 'string', default: '8083' },
      'tesla-port': { type: 'string', default: '8084' },
      vehicles: { type: 'string', default: '25' },
      'time-scale': { type: 'string', default: '5' },
    },
  });
  const number = (text: string, name: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} takes a number`);
    return n;
  };
  const vehicles = number(values.vehicles, 'vehicles');
  const simulators = await startDemoSimulators({
    host: values.host,
    ports: {
      samsara: number(values['samsara-port'], 'samsara-port'),
      geotab: number(values['geotab-port'], 'geotab-port'),
      traccar: number(values['traccar-port'], 'traccar-port'),
      tessie: number(values['tesla-port'], 'tesla-port'),
    },
    timeScale: number(values['time-scale'], 'time-scale'),
    vehicles: { samsara: vehicles, geotab: vehicles, traccar: vehicles, tessie: vehicles },
  });
  const lines = ['', 'Fleetwire provider simulators:', ''];
  for (const [provider, sim] of Object.entries(simulators.running)) {
    lines.push(`  ${provider.padEnd(16)} ${sim.url}  credentials ${JSON.stringify(demoCredentials[provider as keyof typeof demoCredentials])}`);
  }
  // The migrating yard's account: what `fleetwire legacy-poller` reads (FLEETWIRE_LEGACY_SAMSARA_TOKEN).
  lines.push(`  ${'samsara (east)'.padEnd(16)} ${simulators.running.samsara.url}  credentials ${JSON.stringify(demoMigratingAccount.credentials)}`);
  lines.push('', 'Vehicle external ids follow each fleet (see GET /fleet/vehicles/stats, Get Device, /api/devices).', 'Stop with Ctrl-C.', '');
  process.stdout.write(`${lines.join('\n')}\n`);
  return simulators;
}
