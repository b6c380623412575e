-- Every version of every institution with the period it was valid: the directory as of any
-- date (shared/projections/temporal.py).
SELECT registry.add_history(
    'registry.institutions', pdm_column => 'pdm', institution_column => 'id');
-- The history starts with the log: the projection replays it into both tables.
DELETE FROM registry.institutions;
DELETE FROM registry.projection_positions WHERE projection = 'institutions';
DELETE FROM registry.stalls WHERE follower = 'projection:institutions';
