-- Backfill (docs/OPERATIONS.md, "Backfill"): a job reads what a provider still holds for a period through its
-- history path and writes it through the ingest handler. Jobs come from POST .../connections/{id}/backfill and from
-- binding a device (the lookback before the bind); a worker claims them one at a time by lease.

CREATE TABLE backfill_jobs (
  workspace_id      uuid NOT NULL,
  id                uuid NOT NULL,
  connection_id     uuid NOT NULL,
  -- The external ids asked for, sorted; NULL: every device bound to the connection when the job runs.
  devices           text[],
  -- The identity of the device list for the uniqueness rule below ('' for every bound device).
  devices_key       text NOT NULL,
  from_at           timestamptz NOT NULL,
  to_at             timestamptz NOT NULL,
  -- Whether `to` was asked for; a request without one is "up to now" and counts as the same request later.
  to_requested      boolean NOT NULL,
  -- `to_at` when asked for, else 'infinity': the period's end as the uniqueness rule compares it.
  to_key            timestamptz NOT NULL,
  trigger           text NOT NULL CHECK (trigger IN ('request', 'bind')),
  status            text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'unsupported')),
  windows_total     integer NOT NULL CHECK (windows_total >= 0),
  windows_done      integer NOT NULL DEFAULT 0 CHECK (windows_done >= 0),
  -- The provider's position inside the current window (its page cursor), so a restart resumes mid-window.
  window_cursor     jsonb,
  readings_fetched  bigint NOT NULL DEFAULT 0,
  readings_accepted bigint NOT NULL DEFAULT 0,
  readings_late     bigint NOT NULL DEFAULT 0,
  readings_duplicate bigint NOT NULL DEFAULT 0,
  readings_rejected bigint NOT NULL DEFAULT 0,
  provider_requests integer NOT NULL DEFAULT 0,
  attempts          integer NOT NULL DEFAULT 0,
  last_error_class  text,
  last_error_message text,
  -- A job waits until then (a provider's Retry-After, a back-off after a transient failure).
  not_before        timestamptz,
  lease_holder      text,
  lease_until       timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  PRIMARY KEY (workspace_id, id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE,
  CHECK (from_at <= to_at),
  CHECK (windows_done <= windows_total)
);

-- One live job per request: asking again for the same connection, devices and period answers the job already
-- there, unless it failed (then a new one may start). A request without `to` is keyed as open-ended.
CREATE UNIQUE INDEX backfill_jobs_request ON backfill_jobs
  (workspace_id, connection_id, devices_key, from_at, to_key)
  WHERE status <> 'failed';

-- What the worker claims next: queued jobs in age order, and running ones whose lease lapsed.
CREATE INDEX backfill_jobs_claimable ON backfill_jobs (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX backfill_jobs_by_workspace ON backfill_jobs (workspace_id, created_at DESC, id);
