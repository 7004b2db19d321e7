-- Workspace and vehicle lifecycle (docs/API.md): VINs unique per workspace whatever their case or surrounding
-- spaces, and charging sessions kept as history of their vehicle rather than of the connection that reported them.

-- Two vehicles of one workspace whose VINs differ only in case or surrounding spaces are one VIN entered twice.
-- Which of them is right is an operator's decision, not a migration's: rather than clear or rename a VIN that
-- other systems may match on, the migration refuses, names the vehicles (never their VINs), and changes nothing.
-- The version still running keeps serving, so the fix is a PATCH of one vehicle's VIN there.
DO $$
DECLARE
  conflicts text;
BEGIN
  SELECT string_agg(format('workspace %s: vehicles %s', workspace_id, vehicle_ids), '; ')
    INTO conflicts
    FROM (SELECT workspace_id, string_agg(id::text, ', ' ORDER BY created_at, id) AS vehicle_ids
            FROM vehicles
           WHERE vin IS NOT NULL
           GROUP BY workspace_id, upper(btrim(vin))
          HAVING count(*) > 1
           ORDER BY workspace_id
           LIMIT 50) AS duplicated;
  IF conflicts IS NOT NULL THEN
    RAISE EXCEPTION 'migration 0012_lifecycle refused: vehicles of one workspace share a VIN (compared without case and surrounding spaces): %. Give each its own VIN or none (PATCH /v1/workspaces/{ws}/vehicles/{id} with "vin") on the version still running, then start again; nothing was changed', conflicts;
  END IF;
END $$;

DROP INDEX vehicles_vin;
CREATE UNIQUE INDEX vehicles_vin ON vehicles (workspace_id, upper(btrim(vin))) WHERE vin IS NOT NULL;

-- A charging session is history of its vehicle, like signal_history: its connection_id says where it came from.
-- Tied to the connection, it was deleted with it (though a connection's removal keeps the vehicles' history), and
-- it could not move with a vehicle to another workspace.
ALTER TABLE charging_sessions DROP CONSTRAINT charging_sessions_workspace_id_connection_id_fkey;
