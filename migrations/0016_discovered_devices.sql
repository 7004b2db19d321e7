-- Onboarding from what providers report, and rejections whose growth follows their causes, not the traffic.

-- Every device a provider reports on a connection of the workspace that no vehicle of it is bound to, kept once
-- per (connection, external id): when it was first and last seen, how many readings it sent while unbound, and a
-- sample of what it sends (the newest value of each catalogue signal, a few hundred bytes), for an operator to bind
-- it to a vehicle or ignore it. An ignored device is dropped before ingest and only counted here (`ignored_count`).
-- `status` says what an operator decided; whether the device is bound is read from device_bindings itself, so a
-- binding made any other way (POST .../vehicles with devices) shows too, and one removed since shows the device
-- pending again. `vehicle_id` is the vehicle it was bound to from this list.
CREATE TABLE discovered_devices (
  workspace_id      uuid NOT NULL,
  connection_id     uuid NOT NULL,
  external_id       text NOT NULL,
  provider          text NOT NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ignored', 'bound')),
  first_seen_at     timestamptz NOT NULL,
  last_seen_at      timestamptz NOT NULL,
  reading_count     bigint NOT NULL DEFAULT 0,
  ignored_count     bigint NOT NULL DEFAULT 0,
  sample            jsonb NOT NULL DEFAULT '{}'::jsonb,
  vehicle_id        uuid,
  status_changed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, connection_id, external_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE
) WITH (fillfactor = 80);

CREATE INDEX discovered_devices_recent ON discovered_devices (workspace_id, last_seen_at DESC, connection_id DESC, external_id DESC);

-- One rejection row per cause and time bucket (core/ingest/rejection-aggregation.ts): the same reason, connection,
-- device and signal within one bucket add to `count` (rejections: updates, or readings of a processed update) and
-- `reading_count` (the readings they refused), and the row keeps the first and last time and the latest example
-- (detail, update body). `rejected_at` is the last time, so "newest first" and retention keep their meaning.
-- `cause_device_id` is the device the cause is about; it is null where the cause is the connection's: devices it
-- reports that nobody bound (listed one by one in discovered_devices), so a shared account's foreign devices make
-- one row per connection and bucket, not one per device.
--
-- Rows written before this migration stay as they were, each one rejection: `count` 1, `bucket_start` null (outside
-- the cause index, so nothing is merged into them), the first time and the reading count read from `rejected_at`
-- and the stored update (core/read/rejections.ts). No existing row is rewritten.
ALTER TABLE ingest_rejections
  ADD COLUMN count             bigint NOT NULL DEFAULT 1,
  ADD COLUMN reading_count     bigint,
  ADD COLUMN first_rejected_at timestamptz,
  ADD COLUMN bucket_start      timestamptz,
  ADD COLUMN cause_device_id   text;

CREATE UNIQUE INDEX ingest_rejections_cause
    ON ingest_rejections (workspace_id, bucket_start, reason, connection_id, cause_device_id, signal) NULLS NOT DISTINCT
 WHERE bucket_start IS NOT NULL;

-- Readings taken by the ingest handler, and of them rejected, per connection and five minutes: the share of a
-- workspace's readings it rejects (a health reason, core/health) without counting history. Devices an operator
-- ignored are not counted: they never reach ingest.
CREATE TABLE ingest_reading_counts (
  workspace_id  uuid NOT NULL,
  bucket_start  timestamptz NOT NULL,
  connection_id uuid NOT NULL,
  -- Up to 16 rows per connection and bucket, summed when read, so that concurrent batches of one connection do not
  -- wait on one counter row (core/ingest/rejection-aggregation.ts, readingCountSlots).
  slot          smallint NOT NULL,
  readings      bigint NOT NULL,
  rejected      bigint NOT NULL,
  PRIMARY KEY (workspace_id, bucket_start, connection_id, slot)
);
