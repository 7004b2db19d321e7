-- Every tenant table is keyed by its workspace first (docs/ARCHITECTURE.md, "Scale-out"), so it can be distributed by
-- workspace_id with the rest: a distributed table's unique constraints must include the distribution column.
-- webhook_deliveries was the one keyed by its identity alone. The identity stays (it orders a subscription's
-- deliveries, newest first, through webhook_deliveries_recent); the key now leads with the workspace.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (workspace_id, id);
