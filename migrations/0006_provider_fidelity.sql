-- Provider fidelity: a connection's settings that are not secret, charging sessions reported by providers, and
-- notes on a poll run (a feed that had to restart).

-- Validated by the provider's contract (docs/PROVIDERS.md); stored in the clear and returned by the API.
ALTER TABLE provider_connections ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;

-- A charging session as the provider reports it (Geotab's ChargeEvent, say), once per provider id; a later report
-- of the same session (it ended, its energy was counted) replaces the earlier.
CREATE TABLE charging_sessions (
  workspace_id   uuid NOT NULL,
  connection_id  uuid NOT NULL,
  external_id    text NOT NULL,
  vehicle_id     uuid NOT NULL,
  provider       text NOT NULL,
  started_at     timestamptz NOT NULL,
  ended_at       timestamptz,
  start_soc_pct  double precision,
  end_soc_pct    double precision,
  energy_kwh     double precision,
  peak_power_kw  double precision,
  location       jsonb,
  received_at    timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, connection_id, external_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE,
  FOREIGN KEY (workspace_id, vehicle_id) REFERENCES vehicles (workspace_id, id) ON DELETE CASCADE
);

CREATE INDEX charging_sessions_by_vehicle ON charging_sessions (workspace_id, vehicle_id, started_at DESC);

ALTER TABLE poll_runs ADD COLUMN notes text[] NOT NULL DEFAULT '{}';
