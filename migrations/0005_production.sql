-- Production correctness: connection-level sync marks, a claim per polled connection, unreadable credentials on
-- the connection they belong to, the credential key's fingerprint, and dead-lettered stream updates.

-- When the pipeline last confirmed a connection with its provider: a successful poll, or a stream connection that
-- was connected with a live heartbeat when its holder reported. A vehicle's lastSyncedAt is derived at read time
-- from these and its own last ingest, so neither a poll nor a stream report ever rewrites vehicle rows (which
-- ingest locks in id order: two lock orders on one table deadlock).
CREATE TABLE connection_sync_marks (
  workspace_id  uuid NOT NULL,
  connection_id uuid NOT NULL,
  confirmed_at  timestamptz NOT NULL,
  PRIMARY KEY (workspace_id, connection_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE
);

INSERT INTO connection_sync_marks (workspace_id, connection_id, confirmed_at)
SELECT workspace_id, connection_id, last_success_at FROM connection_poll_states WHERE last_success_at IS NOT NULL;

-- A poll of a connection is claimed before it starts and released with its outcome: whatever happens to the job
-- that started it, no two processes poll one connection at once.
ALTER TABLE connection_poll_states ADD COLUMN claimed_by text;
ALTER TABLE connection_poll_states ADD COLUMN claimed_until timestamptz;

-- Set when the stored credentials could not be decrypted with the deployment's key; cleared when they are replaced.
ALTER TABLE provider_connections ADD COLUMN credentials_unreadable_at timestamptz;

-- Facts about the deployment itself: the fingerprint of the key that encrypts provider credentials, so a process
-- started with another key refuses to start instead of failing on every connection.
CREATE TABLE deployment_settings (
  name       text PRIMARY KEY,
  value      text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE stream_connection_states ADD COLUMN dead_lettered bigint NOT NULL DEFAULT 0;
