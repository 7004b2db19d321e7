-- A rollback that loses nothing (docs/OPERATIONS.md, "Migrating a workspace", step 4): when the cutover leaves
-- `core`, core owes the workspace one closing poll, from its committed feed cursors, under the generation before the
-- change, so what the legacy poller read and was refused while core owned the workspace reaches history.
-- `closing_poll_generation` is that generation while the closing poll is owed; NULL otherwise. Every later change of
-- cutover clears it (a generation fence: a closing poll of an older change never runs).
ALTER TABLE cutover_states ADD COLUMN closing_poll_generation bigint;
