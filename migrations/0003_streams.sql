-- The stream runtime (DESIGN §7): which stream process holds which connection (a lease, renewed while the process
-- lives), and the state each process reports for the connections it holds.

CREATE TABLE stream_leases (
  workspace_id  uuid NOT NULL,
  connection_id uuid NOT NULL,
  holder        text NOT NULL,
  acquired_at   timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (workspace_id, connection_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE
);

CREATE TABLE stream_connection_states (
  workspace_id      uuid NOT NULL,
  connection_id     uuid NOT NULL,
  holder            text NOT NULL,
  connected         boolean NOT NULL,
  sockets           integer NOT NULL,
  sockets_open      integer NOT NULL,
  last_message_at   timestamptz,
  last_heartbeat_at timestamptz,
  connected_since   timestamptz,
  reconnects        bigint NOT NULL DEFAULT 0,
  readings_in       bigint NOT NULL DEFAULT 0,
  delivered         bigint NOT NULL DEFAULT 0,
  coalesced         bigint NOT NULL DEFAULT 0,
  dropped           bigint NOT NULL DEFAULT 0,
  buffered          integer NOT NULL DEFAULT 0,
  bad_frames        bigint NOT NULL DEFAULT 0,
  last_error_class  text,
  last_error        text,
  last_error_at     timestamptz,
  next_reconnect_at timestamptz,
  reported_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, connection_id),
  FOREIGN KEY (workspace_id, connection_id) REFERENCES provider_connections (workspace_id, id) ON DELETE CASCADE
);

-- Stream processes seen recently (each lease request says "I am alive"), so connections can be shared out fairly.
CREATE TABLE stream_holders (
  holder  text PRIMARY KEY,
  seen_at timestamptz NOT NULL
);
