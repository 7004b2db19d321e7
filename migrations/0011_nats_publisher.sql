-- NATS JetStream publishing (FLEETWIRE_NATS_URL): where each stream's publisher is in the event log, and which core
-- process publishes now. The row is made by the first publisher of a stream, with its cursor just before the oldest
-- event still retained, so a new stream receives the whole retained log and nothing committed before it is missed;
-- JetStream's duplicate window absorbs what is published again after a crash or a takeover.

CREATE TABLE nats_publishers (
  stream        text PRIMARY KEY,
  -- Every event up to this position is acknowledged by the stream (or was removed before it could be).
  cursor        bigint NOT NULL,
  -- The core process publishing now, until when (renewed while it works); its writes are fenced by it.
  claimed_by    text,
  claimed_until timestamptz,
  advanced_at   timestamptz
);
