-- Cutover without a leap of faith (docs/OPERATIONS.md, "Migrating a workspace"): a `shadow` mode between `legacy`
-- and `core`, every transition recorded, and the parity of core's polling with the legacy poller's, kept as the
-- readings arrive so the report over a day of a big fleet reads hours, not readings.

-- shadow: the legacy poller owns the snapshot; core polls beside it into shadow_readings only.
ALTER TABLE cutover_states DROP CONSTRAINT cutover_states_mode_check;
ALTER TABLE cutover_states ADD CONSTRAINT cutover_states_mode_check CHECK (mode IN ('legacy', 'shadow', 'core'));
-- The mode before the last change, and how many changes there have been: a rollback (core to legacy) lets core's
-- poll runs that started under the generation before it commit their pages.
ALTER TABLE cutover_states
  ADD COLUMN previous_mode text CHECK (previous_mode IN ('legacy', 'shadow', 'core')),
  ADD COLUMN generation bigint NOT NULL DEFAULT 0;

-- The gate from shadow to core: parity over the last `parity_window_hours` complete hours must reach these shares,
-- and two readings of one signal count as the same reading when observed within `parity_match_seconds`.
ALTER TABLE telematics_policies
  ADD COLUMN parity_window_hours integer NOT NULL DEFAULT 24 CHECK (parity_window_hours BETWEEN 1 AND 168),
  ADD COLUMN parity_min_coverage_pct double precision NOT NULL DEFAULT 99 CHECK (parity_min_coverage_pct BETWEEN 0 AND 100),
  ADD COLUMN parity_min_agreement_pct double precision NOT NULL DEFAULT 99 CHECK (parity_min_agreement_pct BETWEEN 0 AND 100),
  ADD COLUMN parity_match_seconds integer NOT NULL DEFAULT 10 CHECK (parity_match_seconds BETWEEN 0 AND 3600);

-- Every change of cutover: who asked (the admin token, or a name they gave), when, from, to, why, whether the gate
-- was overridden, and the parity it was judged on.
CREATE TABLE cutover_transitions (
  workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL,
  from_mode    text NOT NULL,
  to_mode      text NOT NULL,
  reason       text,
  forced       boolean NOT NULL DEFAULT false,
  parity       jsonb,
  PRIMARY KEY (workspace_id, id)
);
CREATE INDEX cutover_transitions_by_time ON cutover_transitions (workspace_id, at DESC);

-- The readings parity compares, while a workspace is in shadow: core's (which land nowhere else) and the legacy
-- poller's (also in the owned history). `matched_at` is the observed time of the other side's reading paired with
-- it (each reading pairs at most once), `agreed` whether their values agree within the signal's tolerance.
CREATE TABLE shadow_readings (
  workspace_id  uuid NOT NULL,
  vehicle_id    uuid NOT NULL,
  signal        text NOT NULL,
  side          text NOT NULL CHECK (side IN ('core', 'legacy')),
  observed_at   timestamptz NOT NULL,
  value         jsonb NOT NULL,
  received_at   timestamptz NOT NULL,
  connection_id uuid NOT NULL,
  matched_at    timestamptz,
  agreed        boolean,
  PRIMARY KEY (workspace_id, vehicle_id, signal, side, observed_at),
  FOREIGN KEY (workspace_id, vehicle_id) REFERENCES vehicles (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX shadow_readings_by_age ON shadow_readings (workspace_id, observed_at);

-- Parity per vehicle, signal and hour (of the readings' observed time): each side's readings and their lag
-- (received minus observed, summed), the pairs and how many agreed, and the latest disagreement as an example.
CREATE TABLE parity_hours (
  workspace_id    uuid NOT NULL,
  vehicle_id      uuid NOT NULL,
  signal          text NOT NULL,
  hour            timestamptz NOT NULL,
  core_count      integer NOT NULL DEFAULT 0,
  legacy_count    integer NOT NULL DEFAULT 0,
  core_lag_ms     bigint NOT NULL DEFAULT 0,
  legacy_lag_ms   bigint NOT NULL DEFAULT 0,
  core_newest     timestamptz,
  legacy_newest   timestamptz,
  pairs           integer NOT NULL DEFAULT 0,
  agreed          integer NOT NULL DEFAULT 0,
  example         jsonb,
  PRIMARY KEY (workspace_id, hour, vehicle_id, signal),
  FOREIGN KEY (workspace_id, vehicle_id) REFERENCES vehicles (workspace_id, id) ON DELETE CASCADE
);
-- The latest example of a vehicle and signal, for the report's worst vehicles: a probe, not a scan of the window.
CREATE INDEX parity_hours_examples ON parity_hours (workspace_id, vehicle_id, signal, hour DESC) WHERE example IS NOT NULL;
