/**
 * Prometheus metrics of a core process (served at /metrics). One registry per process; counters are cumulative
 * since start, as Prometheus expects.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IngestOutcome } from './ingest/reasons.ts';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'fleetwire_' });

const ingestUpdates = new Counter({
  name: 'fleetwire_ingest_updates_total',
  help: 'Canonical updates taken by the ingest handler, by outcome and rejection reason',
  labelNames: ['status', 'reason'] as const,
  registers: [metricsRegistry],
});

const ingestReadings = new Counter({
  name: 'fleetwire_ingest_readings_total',
  help: 'Readings taken by the ingest handler, by status and rejection reason',
  labelNames: ['status', 'reason'] as const,
  registers: [metricsRegistry],
});

const ingestBatchSeconds = new Histogram({
  name: 'fleetwire_ingest_batch_duration_seconds',
  help: 'Time to validate and commit one ingest batch',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

export const httpRequestSeconds = new Histogram({
  name: 'fleetwire_http_server_request_duration_seconds',
  help: 'HTTP requests served, by method, route and status code',
  labelNames: ['http_request_method', 'http_route', 'http_response_status_code'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

export function recordIngestOutcome(outcome: IngestOutcome, seconds: number): void {
  ingestBatchSeconds.observe(seconds);
  const updates = new Map<string, number>();
  const readings = new Map<string, number>();
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  for (const result of outcome.results) {
    bump(updates, `${result.status}|${result.reason ?? ''}`);
    for (const reading of result.readings) bump(readings, `${reading.status}|${reading.reason ?? ''}`);
  }
  for (const [key, count] of updates) {
    const [status, reason] = key.split('|') as [string, string];
    ingestUpdates.inc({ status, reason }, count);
  }
  for (const [key, count] of readings) {
    const [status, reason] = key.split('|') as [string, string];
    ingestReadings.inc({ status, reason }, count);
  }
}

const pollRuns = new Counter({
  name: 'fleetwire_poll_runs_total',
  help: 'Connection poll runs, by provider, status and error class',
  labelNames: ['provider', 'status', 'error_class'] as const,
  registers: [metricsRegistry],
});

const pollRunSeconds = new Histogram({
  name: 'fleetwire_poll_run_duration_seconds',
  help: 'Duration of one connection poll run',
  labelNames: ['provider'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [metricsRegistry],
});

const providerRequests = new Counter({
  name: 'fleetwire_provider_requests_total',
  help: 'Requests made to providers by the poll runner',
  labelNames: ['provider'] as const,
  registers: [metricsRegistry],
});

export function recordPollRun(provider: string, status: string, errorClass: string, seconds: number, requests: number): void {
  pollRuns.inc({ provider, status, error_class: errorClass });
  pollRunSeconds.observe({ provider }, seconds);
  providerRequests.inc({ provider }, requests);
}

const scheduledEvents = new Counter({
  name: 'fleetwire_scheduled_events_total',
  help: 'Scheduled events processed, by origin and whether they were redelivered',
  labelNames: ['origin', 'duplicate'] as const,
  registers: [metricsRegistry],
});

export function recordScheduledEvent(origin: 'http' | 'ticker', duplicate: boolean): void {
  scheduledEvents.inc({ origin, duplicate: String(duplicate) });
}
