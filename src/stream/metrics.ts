/**
 * Prometheus metrics of a stream process: connections up and down, and where every reading taken in went
 * (delivered, coalesced, dropped, still buffered), refreshed with each status report.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { StreamStatus } from '../canonical/stream-api.ts';
import type { Coalescer } from './coalescer.ts';
import type { DeliveryPipeline } from './delivery.ts';

export const streamRegistry = new Registry();
collectDefaultMetrics({ register: streamRegistry, prefix: 'fleetwire_stream_' });

const connections = new Gauge({
  name: 'fleetwire_stream_connections',
  help: 'Stream connections held by this process, by state',
  labelNames: ['state'] as const,
  registers: [streamRegistry],
});

const readings = new Gauge({
  name: 'fleetwire_stream_readings',
  help: 'Readings taken in since start, by what became of them (in = delivered + coalesced + dropped + dead_lettered + buffered)',
  labelNames: ['outcome'] as const,
  registers: [streamRegistry],
});

const badFrames = new Gauge({ name: 'fleetwire_stream_bad_frames', help: 'Frames that could not be read, since start', registers: [streamRegistry] });
const reconnects = new Gauge({ name: 'fleetwire_stream_reconnects', help: 'Socket reconnects since start', registers: [streamRegistry] });
const recognised = new Gauge({
  name: 'fleetwire_stream_recognised',
  help: 'What frames said besides readings, by kind, over the connections held (each since it was opened): vehicle alerts and errors, values the vehicle marked invalid, readings of devices not bound on their connection (dropped)',
  labelNames: ['kind'] as const,
  registers: [streamRegistry],
});

/** The per-connection counts of what was recognised but not delivered. */
export interface RecognisedCounts {
  alerts: number;
  errors: number;
  invalidValues: number;
  unboundReadings: number;
}

export const streamMetrics = {
  observe(statuses: readonly StreamStatus[], pipeline: DeliveryPipeline, coalescer: Coalescer, counts: readonly RecognisedCounts[] = []): void {
    const up = statuses.filter((s) => s.connected).length;
    connections.set({ state: 'up' }, up);
    connections.set({ state: 'down' }, statuses.length - up);
    const totals = pipeline.totals;
    readings.set({ outcome: 'in' }, statuses.reduce((n, s) => n + s.readingsIn, 0));
    readings.set({ outcome: 'delivered' }, totals.delivered);
    readings.set({ outcome: 'coalesced' }, coalescer.coalesced);
    readings.set({ outcome: 'dropped' }, totals.dropped);
    readings.set({ outcome: 'dead_lettered' }, totals.deadLettered);
    readings.set({ outcome: 'buffered' }, totals.buffered + coalescer.held);
    badFrames.set(statuses.reduce((n, s) => n + s.badFrames, 0));
    reconnects.set(statuses.reduce((n, s) => n + s.reconnects, 0));
    const sum = (pick: (c: RecognisedCounts) => number) => counts.reduce((n, c) => n + pick(c), 0);
    recognised.set({ kind: 'alert' }, sum((c) => c.alerts));
    recognised.set({ kind: 'error' }, sum((c) => c.errors));
    recognised.set({ kind: 'invalid_value' }, sum((c) => c.invalidValues));
    recognised.set({ kind: 'unbound_reading' }, sum((c) => c.unboundReadings));
  },
};
