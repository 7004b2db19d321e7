-- Events take their log position when they are written, from the head row, which the writing transaction then holds
-- until it commits: positions are dense and in commit order by construction, and no event row is written twice.
-- Events still without a position (written under the sequencer, committed but not yet numbered) get theirs here, in
-- insertion order, as the sequencer would have given them.
WITH unpositioned AS (
  SELECT insert_order, row_number() OVER (ORDER BY insert_order) AS n FROM events WHERE position IS NULL
),
head AS (
  UPDATE event_log_head SET last_position = last_position + (SELECT count(*) FROM unpositioned)
  RETURNING last_position - (SELECT count(*) FROM unpositioned) AS base
)
UPDATE events e SET position = head.base + u.n FROM unpositioned u, head WHERE e.insert_order = u.insert_order;

DROP INDEX events_unpositioned;
ALTER TABLE events ALTER COLUMN position SET NOT NULL;

-- Two checks each event row paid for and nothing needs: its id is a random UUID that nothing looks events up by, and
-- its workspace is checked already by the event_subjects row every write of events upserts first (whose foreign key
-- refuses a workspace that is gone); a workspace's deletion deletes its events itself.
ALTER TABLE events DROP CONSTRAINT events_id_key;
ALTER TABLE events DROP CONSTRAINT events_workspace_id_fkey;
