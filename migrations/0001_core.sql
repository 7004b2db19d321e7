-- Core schema (DESIGN §2). Every key leads with workspace_id: each query is tenant-scoped, and the tables can be
-- distributed by workspace on a sharded PostgreSQL without changing a key.

CREATE TABLE workspaces (
  id          uuid PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE telematics_policies (
  workspace_id                uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
  enabled                     boolean NOT NULL,
  poll_interval_seconds       integer NOT NULL CHECK (poll_interval_seconds BETWEEN 10 AND 86400),
  freshness_threshold_seconds integer NOT NULL CHECK (freshness_threshold_seconds BETWEEN 10 AND 604800),
  silent_after_seconds        integer NOT NULL CHECK (silent_after_seconds BETWEEN 10 AND 31536000),
  retention_days              integer NOT NULL CHECK (retention_days BETWEEN 1 AND 3650),
  updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Which poller owns the workspace: 'legacy' (an older poller posting legacy_poll updates) or 'core'.
CREATE TABLE cutover_states (
  workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
  mode         text NOT NULL CHECK (mode IN ('legacy', 'core')),
  changed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE provider_connections (
  workspace_id           uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  id                     uuid NOT NULL,
  provider               text NOT NULL,
  transport              text NOT NULL CHECK (transport IN ('poll', 'stream')),
  label                  text NOT NULL,
  base_url               text NOT NULL,
  -- AES-256-GCM under FLEETWIRE_SECRET_KEY, bound to (workspace_id, id); never returned, never logged.
  credentials_ciphertext text NOT NULL,
  enabled                boolean NOT NULL DEFAULT true,
  -- The provider's feed position (cursors, versions); advanced in the same transaction as the data it covers.
  feed_cursor            jsonb,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, id)
);

-- Vehicles carry the pipeline's two clocks (DESIGN §8), written by the ingest unit of work; a low fillfactor keeps
-- those frequent updates HOT.
CREATE TABLE vehicles (
  workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  id               uuid NOT NULL,
  name             text NOT NULL,
  vin              text,
  active           boolean NOT NULL DEFAULT true,
  last_synced_at   timestamptz,
  last_observed_at timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, id)
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX vehicles_vin ON vehicles (workspace_id, vin) WHERE vin IS NOT NULL;
CREATE INDEX vehicles_by_name ON vehicles (workspace_id, name, id);

-- A provider's device (its external id on one connection) reports for one vehicle.
CREATE TABLE device_bindings (
  workspace_id  uuid NOT NULL,
  connection_id uuid NOT NULL,
  external_id   text NOT NULL,
  vehicle_id    uuid NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, connection_id, external_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE,
  FOREIGN KEY (workspace_id, vehicle_id) REFERENCES vehicles (workspace_id, id) ON DELETE CASCADE
);

CREATE INDEX device_bindings_by_vehicle ON device_bindings (workspace_id, vehicle_id);

-- The latest value of each signal of each vehicle. It moves only forward in observed time.
CREATE TABLE signal_snapshot (
  workspace_id  uuid NOT NULL,
  vehicle_id    uuid NOT NULL,
  signal        text NOT NULL,
  value         jsonb NOT NULL,
  observed_at   timestamptz NOT NULL,
  source        text NOT NULL,
  provider      text NOT NULL,
  connection_id uuid NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, vehicle_id, signal),
  FOREIGN KEY (workspace_id, vehicle_id) REFERENCES vehicles (workspace_id, id) ON DELETE CASCADE
) WITH (fillfactor = 70);

ALTER TABLE signal_snapshot SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);

-- Every accepted or late reading, once. Daily partitions by observed time (created on demand by
-- core/db/history-partitions.ts) let retention drop whole days.
CREATE TABLE signal_history (
  workspace_id  uuid NOT NULL,
  vehicle_id    uuid NOT NULL,
  signal        text NOT NULL,
  observed_at   timestamptz NOT NULL,
  value         jsonb NOT NULL,
  source        text NOT NULL,
  provider      text NOT NULL,
  connection_id uuid NOT NULL,
  received_at   timestamptz NOT NULL,
  ingested_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, vehicle_id, signal, observed_at)
) PARTITION BY RANGE (observed_at);

-- Every rejection the ingest handler answers, with the offending update. Updates that name no usable workspace
-- are kept under the nil UUID, where an admin can list them.
CREATE TABLE ingest_rejections (
  workspace_id       uuid NOT NULL,
  id                 bigint GENERATED ALWAYS AS IDENTITY,
  rejected_at        timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  reason             text NOT NULL,
  detail             text NOT NULL,
  source             text,
  provider           text,
  connection_id      uuid,
  external_device_id text,
  vehicle_id         uuid,
  signal             text,
  update_body        jsonb NOT NULL,
  PRIMARY KEY (workspace_id, id)
);

CREATE INDEX ingest_rejections_recent ON ingest_rejections (workspace_id, rejected_at DESC, id DESC);

CREATE TABLE api_keys (
  workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  name         text NOT NULL,
  -- SHA-256 of the key's secret part; the key itself is shown once, at creation.
  secret_hash  bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  PRIMARY KEY (workspace_id, id)
);
