-- Health that tells the truth (docs/API.md, "Health"): when each workspace last received a scheduled event, and
-- which devices' own sockets a stream process reports down.

-- One row per workspace, moved by every scheduled event that reaches it (an EventBridge event posted to core, or the
-- embedded ticker's): a scheduler that stopped shows as `scheduler_silent` after two poll intervals. Written at most
-- every tenth of the workspace's poll interval, never per vehicle.
CREATE TABLE workspace_scheduler_marks (
  workspace_id  uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
  last_event_at timestamptz NOT NULL,
  last_event_id text NOT NULL,
  last_source   text NOT NULL
);

-- The sockets of a connection that carry one device each (Tessie: one per VIN) and are not open, as
-- {"<external id>": "<error class or null>"}: only those devices lose the connection's live-stream confirmation, and
-- the connection is `degraded`, not `disconnected`, while its other sockets are open.
ALTER TABLE stream_connection_states ADD COLUMN devices_down jsonb NOT NULL DEFAULT '{}'::jsonb;
