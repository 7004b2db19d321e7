-- Events out (DESIGN §10): a transactional outbox that is also the retained event log.
--
-- A unit of work inserts its events in the transaction that makes the change, numbering them per subject (a vehicle,
-- a connection, the workspace) from event_subjects, whose row it locks: two transactions that change one subject
-- insert its events in sequence order. `insert_order` follows insertion, so it keeps each subject's order, but a
-- lower value may commit after a higher one. The sequencer (one transaction at a time, under an advisory lock) gives
-- committed events their `position`: dense, in commit order and in each subject's order. Consumers (SSE, webhooks,
-- NATS) read by position, which never gains an entry below one already read.

ALTER TABLE telematics_policies
  ADD COLUMN soc_thresholds_pct double precision[] NOT NULL DEFAULT '{20,80}',
  ADD COLUMN event_retention_days integer NOT NULL DEFAULT 7;

CREATE TABLE event_subjects (
  workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  subject       text NOT NULL,
  last_sequence bigint NOT NULL,
  PRIMARY KEY (workspace_id, subject)
);

CREATE TABLE events (
  insert_order bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id           uuid NOT NULL UNIQUE,
  workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  subject      text NOT NULL,
  type         text NOT NULL,
  sequence     bigint NOT NULL,
  time         timestamptz NOT NULL,
  data         jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  position     bigint UNIQUE
);

CREATE INDEX events_unpositioned ON events (insert_order) WHERE position IS NULL;
CREATE INDEX events_by_workspace ON events (workspace_id, position);
CREATE INDEX events_by_age ON events (workspace_id, created_at);

-- The last position the sequencer gave.
CREATE TABLE event_log_head (
  id            boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_position bigint NOT NULL
);
INSERT INTO event_log_head (last_position) VALUES (0);
