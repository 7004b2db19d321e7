/**
 * A FaultInjector that remembers what it drew for every request, in order, so a test can tell which fault ended
 * a failed poll (the last request of a failed run is the one that failed it).
 */
import { FaultInjector, type FaultKind } from '../../src/sim/faults.ts';

export class RecordingFaults extends FaultInjector {
  /** One entry per request: the fault it got, or undefined for a clean answer. */
  readonly drawn: (FaultKind | undefined)[] = [];

  override next(): FaultKind | undefined {
    const fault = super.next();
    this.drawn.push(fault);
    return fault;
  }
}
