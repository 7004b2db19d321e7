/**
 * What every provider simulator gives its caller once it is listening: where it is, what it served, and the
 * handle to inject faults. Each provider's simulator lives in its provider folder and returns this.
 */
import type { FaultInjector } from './faults.ts';
import type { FleetModel } from './fleet-model.ts';
import type { GroundTruth } from './ground-truth.ts';

export interface RunningSimulator {
  /** The provider name, as in the provider registry. */
  readonly provider: string;
  /** The base URL a connection uses (http://127.0.0.1:<port>). */
  readonly url: string;
  readonly groundTruth: GroundTruth;
  readonly faults: FaultInjector;
  /** Requests (or frames, for streams) served so far. */
  readonly served: { requests: number };
  stop(): Promise<void>;
}

export interface SimulatorListenOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The clock the simulator advances its fleets to; injectable for tests. Default Date.now. */
  now?: () => number;
}

/** One simulated provider account: its credentials (provider-specific) and its fleet. */
export interface SimulatedAccount<Credentials> {
  credentials: Credentials;
  fleet: FleetModel;
}
