-- Webhook subscriptions (DESIGN §10): each reads the event log by position from its own cursor and delivers the
-- events of its types, signed as Standard Webhooks says, at least once and in order per subject.

CREATE TABLE webhook_subscriptions (
  workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  url               text NOT NULL,
  types             text[] NOT NULL,
  description       text NOT NULL DEFAULT '',
  -- The signing secret, encrypted under the deployment's key (never answered after creation).
  secret_ciphertext text NOT NULL,
  -- active: delivering; paused: by an operator, or after 24 h of failures (status_reason says which);
  -- ended: the receiver answered 410 Gone.
  status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'ended')),
  status_reason     text,
  -- Every event up to this position is delivered (or not of this subscription's types).
  cursor            bigint NOT NULL,
  -- The head-of-line event's retries: when they started, how many, when the next is due.
  failing_since     timestamptz,
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz,
  last_success_at   timestamptz,
  last_error        text,
  last_error_at     timestamptz,
  -- The core process delivering it now, until when (renewed while it works).
  claimed_by        text,
  claimed_until     timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, id)
);

CREATE INDEX webhook_subscriptions_active ON webhook_subscriptions (claimed_until) WHERE status = 'active';

-- Delivery attempts, kept a few days for operators (GET .../webhooks/{id}/deliveries) and for the latency figures.
CREATE TABLE webhook_deliveries (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id    uuid NOT NULL,
  subscription_id uuid NOT NULL,
  event_id        uuid NOT NULL,
  event_type      text NOT NULL,
  event_position  bigint NOT NULL,
  attempt         integer NOT NULL,
  outcome         text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'gone')),
  status_code     integer,
  error           text,
  duration_ms     double precision NOT NULL,
  -- From the event's commit to the receiver's 2xx (delivered attempts only).
  latency_ms      double precision,
  attempted_at    timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (workspace_id, subscription_id) REFERENCES webhook_subscriptions (workspace_id, id) ON DELETE CASCADE
);

CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (workspace_id, subscription_id, id DESC);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (attempted_at);
