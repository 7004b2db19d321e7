-- The websocket provider once named `tesla-telemetry` is Tessie's hosted stream (docs/PROVIDERS.md, Tessie), now
-- `tessie`; `tesla-fleet-telemetry` is a new provider (Tesla's own server, read through its dispatchers), so nothing
-- stored under the old name belongs to it. Every column that names a provider follows the rename, so reads, health
-- and the stream directory find these rows under the provider they now belong to. (ingest_rejections.update_body
-- keeps the update exactly as it was received, old name included: it is the record of what arrived.)

UPDATE provider_connections SET provider = 'tessie' WHERE provider = 'tesla-telemetry';

-- These connections mapped Tesla's `Soc` to soc_pct; Tessie's default is now `BatteryLevel`. Existing connections
-- keep the field they have been storing, so a vehicle's SoC series does not switch fields mid-history.
UPDATE provider_connections
   SET options = jsonb_build_object('socField', 'Soc') || options
 WHERE provider = 'tessie' AND NOT (options ? 'socField');

UPDATE signal_snapshot SET provider = 'tessie' WHERE provider = 'tesla-telemetry';
UPDATE signal_history SET provider = 'tessie' WHERE provider = 'tesla-telemetry';
UPDATE ingest_rejections SET provider = 'tessie' WHERE provider = 'tesla-telemetry';
UPDATE poll_runs SET provider = 'tessie' WHERE provider = 'tesla-telemetry';
UPDATE charging_sessions SET provider = 'tessie' WHERE provider = 'tesla-telemetry';
