-- Runs still marked running: few at any time, looked up per workspace at the start of every poll so a run whose
-- outcome was never recorded (the database was down, the process died) is closed as failed.
CREATE INDEX poll_runs_open ON poll_runs (workspace_id, started_at) WHERE status = 'running';
