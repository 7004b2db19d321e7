-- What the transition sweeper last told of each vehicle's freshness and each connection's health: a change from it
-- is an event (fleetwire.vehicle.freshness.changed, fleetwire.connection.health.changed).

CREATE TABLE vehicle_freshness_states (
  workspace_id uuid NOT NULL,
  vehicle_id   uuid NOT NULL,
  status       text NOT NULL,
  changed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, vehicle_id),
  FOREIGN KEY (workspace_id, vehicle_id) REFERENCES vehicles (workspace_id, id) ON DELETE CASCADE
);

CREATE TABLE connection_health_states (
  workspace_id  uuid NOT NULL,
  connection_id uuid NOT NULL,
  status        text NOT NULL,
  changed_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, connection_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE
);
