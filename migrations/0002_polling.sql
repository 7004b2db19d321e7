-- Scheduled polling (DESIGN §5): processed scheduled events, when each workspace was last enqueued, each poll
-- connection's health, and a record of every poll run.

-- EventBridge event ids already processed: a redelivered event polls nothing.
CREATE TABLE scheduled_events (
  id              text PRIMARY KEY,
  source          text NOT NULL,
  detail_type     text NOT NULL,
  event_time      timestamptz,
  target          uuid,
  workspaces_due  integer NOT NULL DEFAULT 0,
  received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX scheduled_events_received ON scheduled_events (received_at);

CREATE TABLE workspace_poll_schedule (
  workspace_id     uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
  last_enqueued_at timestamptz NOT NULL,
  last_event_id    text NOT NULL
);

-- The feed cursor's version fences concurrent pollers: a cursor commits only over the version it was read at.
ALTER TABLE provider_connections ADD COLUMN feed_cursor_version bigint NOT NULL DEFAULT 0;

CREATE TABLE connection_poll_states (
  workspace_id         uuid NOT NULL,
  connection_id        uuid NOT NULL,
  last_attempt_at      timestamptz,
  last_success_at      timestamptz,
  last_error_at        timestamptz,
  last_error_class     text,
  last_error_message   text,
  consecutive_failures integer NOT NULL DEFAULT 0,
  next_poll_at         timestamptz,
  rate_limited_until   timestamptz,
  -- Set when the provider refused the credentials; polling stops until they change.
  auth_failed_at       timestamptz,
  PRIMARY KEY (workspace_id, connection_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE
);

CREATE TABLE poll_runs (
  workspace_id      uuid NOT NULL,
  id                bigint GENERATED ALWAYS AS IDENTITY,
  connection_id     uuid NOT NULL,
  provider          text NOT NULL,
  trigger_event_id  text,
  -- Which process ran it (host:pid), for operators following a poll across a cluster.
  runner            text NOT NULL,
  started_at        timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  finished_at       timestamptz,
  status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  error_class       text,
  error_message     text,
  provider_requests integer NOT NULL DEFAULT 0,
  pages             integer NOT NULL DEFAULT 0,
  skipped_entities  integer NOT NULL DEFAULT 0,
  accepted          integer NOT NULL DEFAULT 0,
  late              integer NOT NULL DEFAULT 0,
  duplicate         integer NOT NULL DEFAULT 0,
  rejected          integer NOT NULL DEFAULT 0,
  PRIMARY KEY (workspace_id, id)
);

CREATE INDEX poll_runs_recent ON poll_runs (workspace_id, started_at DESC, id DESC);
CREATE INDEX poll_runs_by_connection ON poll_runs (workspace_id, connection_id, started_at DESC);
