/**
 * Prometheus metrics of a core process (served at /metrics). One registry per process; counters are cumulative
 * since start, as Prometheus expects.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

const ingestRefused = new Counter({
  name: 'fleetwire_ingest_refused_total',
  help: 'Ingest batches refused because the handler was at capacity (answered 503 or retried by the poll runner)',
  registers: [metricsRegistry],
});

export function recordIngestRefused(): void {
  ingestRefused.inc();
}

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

/**
 * Freshness and connection health, computed at scrape time from the database (the same queries as the health
 * API), so an alert sees staleness the moment a threshold passes. The process's app points this at its database.
 */
type HealthSnapshot = () => Promise<
  {
    workspaceId: string;
    freshness: { counts: Record<string, number> };
    connections: { id: string; transport: string; status: string; lastSuccessAt: string | null }[];
  }[]
>;
let healthSnapshot: HealthSnapshot | undefined;

export function observeHealthFrom(source: HealthSnapshot): void {
  healthSnapshot = source;
}

let lastSnapshot: { at: number; value: ReturnType<HealthSnapshot> } | undefined;
/** One database round per scrape, however many gauges ask. */
function snapshot(): ReturnType<HealthSnapshot> {
  const now = Date.now();
  if (!healthSnapshot) return Promise.resolve([]);
  if (!lastSnapshot || now - lastSnapshot.at > 1000) lastSnapshot = { at: now, value: healthSnapshot().catch(() => []) };
  return lastSnapshot.value;
}

new Gauge({
  name: 'fleetwire_workspace_vehicles',
  help: 'Active vehicles per workspace by freshness status (fresh, stale, silent, never), computed at scrape time',
  labelNames: ['workspace_id', 'status'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    for (const workspace of await snapshot()) {
      for (const [status, n] of Object.entries(workspace.freshness.counts)) this.set({ workspace_id: workspace.workspaceId, status }, n);
    }
  },
});

new Gauge({
  name: 'fleetwire_connections',
  help: 'Provider connections per workspace by transport and health status',
  labelNames: ['workspace_id', 'transport', 'status'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    for (const workspace of await snapshot()) {
      for (const c of workspace.connections) this.inc({ workspace_id: workspace.workspaceId, transport: c.transport, status: c.status });
    }
  },
});

new Gauge({
  name: 'fleetwire_stream_connections_up',
  help: 'Stream connections per workspace that are connected, as their stream processes report',
  labelNames: ['workspace_id'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    for (const workspace of await snapshot()) {
      this.set({ workspace_id: workspace.workspaceId }, workspace.connections.filter((c) => c.transport === 'stream' && c.status === 'ok').length);
    }
  },
});

new Gauge({
  name: 'fleetwire_poll_lag_seconds',
  help: 'Seconds since the last successful poll of each poll connection',
  labelNames: ['workspace_id', 'connection_id'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    const now = Date.now();
    for (const workspace of await snapshot()) {
      for (const c of workspace.connections) {
        if (c.transport !== 'poll' || !c.lastSuccessAt) continue;
        this.set({ workspace_id: workspace.workspaceId, connection_id: c.id }, (now - Date.parse(c.lastSuccessAt)) / 1000);
      }
    }
  },
});

const webhookDeliveries = new Counter({
  name: 'fleetwire_webhook_deliveries_total',
  help: 'Webhook delivery attempts by outcome (delivered, failed, gone)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

const webhookLatencySeconds = new Histogram({
  name: 'fleetwire_webhook_delivery_latency_seconds',
  help: "From an event's commit to its receiver's 2xx",
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [metricsRegistry],
});

export function recordWebhookDelivery(outcome: 'delivered' | 'failed' | 'gone', latencySeconds?: number): void {
  webhookDeliveries.inc({ outcome });
  if (latencySeconds !== undefined) webhookLatencySeconds.observe(latencySeconds);
}

type WebhookSnapshot = () => Promise<{ workspaceId: string; id: string; status: string; failing: boolean; backlog: number }[]>;
let webhookSnapshot: WebhookSnapshot | undefined;

/** Where the webhook gauges read their state at scrape time. */
export function observeWebhooksFrom(source: WebhookSnapshot): void {
  webhookSnapshot = source;
}

new Gauge({
  name: 'fleetwire_webhook_subscriptions',
  help: 'Webhook subscriptions per workspace by state (active, failing, paused, ended), computed at scrape time',
  labelNames: ['workspace_id', 'state'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    for (const w of (await webhookSnapshot?.().catch(() => [])) ?? []) {
      this.inc({ workspace_id: w.workspaceId, state: w.failing && w.status === 'active' ? 'failing' : w.status });
    }
  },
});

new Gauge({
  name: 'fleetwire_webhook_backlog_events',
  help: 'Events waiting for each active webhook subscription (counted up to 100,000)',
  labelNames: ['workspace_id', 'subscription_id'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    for (const w of (await webhookSnapshot?.().catch(() => [])) ?? []) {
      if (w.status === 'active') this.set({ workspace_id: w.workspaceId, subscription_id: w.id }, w.backlog);
    }
  },
});

const natsPublished = new Counter({
  name: 'fleetwire_nats_published_total',
  help: 'Events acknowledged by the JetStream stream, by whether the stream already held them (a republish it de-duplicated)',
  labelNames: ['duplicate'] as const,
  registers: [metricsRegistry],
});

const natsPublishFailures = new Counter({
  name: 'fleetwire_nats_publish_failures_total',
  help: 'Event publishes to NATS that were not acknowledged (they are published again)',
  registers: [metricsRegistry],
});

const natsSkipped = new Counter({
  name: 'fleetwire_nats_skipped_events_total',
  help: 'Events removed from the log (retention, a deleted workspace) before they were published to NATS',
  registers: [metricsRegistry],
});

export function recordNatsPublished(acknowledged: number, duplicates: number): void {
  if (acknowledged > duplicates) natsPublished.inc({ duplicate: 'false' }, acknowledged - duplicates);
  if (duplicates > 0) natsPublished.inc({ duplicate: 'true' }, duplicates);
}

export function recordNatsPublishFailures(count: number): void {
  if (count > 0) natsPublishFailures.inc(count);
}

export function recordNatsSkipped(count: number): void {
  if (count > 0) natsSkipped.inc(count);
}

type NatsSnapshot = () => Promise<{ stream: string; backlog: number } | undefined>;
let natsSnapshot: NatsSnapshot | undefined;

/** Where the NATS backlog gauge reads the publisher's cursor at scrape time. */
export function observeNatsFrom(source: NatsSnapshot): void {
  natsSnapshot = source;
}

new Gauge({
  name: 'fleetwire_nats_backlog_events',
  help: "Log positions after the NATS publisher's cursor (the log's head minus the cursor), computed at scrape time",
  labelNames: ['stream'] as const,
  registers: [metricsRegistry],
  async collect() {
    this.reset();
    const state = await natsSnapshot?.().catch(() => undefined);
    if (state) this.set({ stream: state.stream }, state.backlog);
  },
});
