-- Every version of every social worker with the period it was valid: the register as of
-- any date (shared/projections/temporal.py).
SELECT hr.add_history('hr.workers', pdm_column => 'pdm');
-- The history starts with the log: the projection replays it into both tables.
DELETE FROM hr.workers;
DELETE FROM hr.projection_positions WHERE projection = 'workers';
DELETE FROM hr.stalls WHERE follower = 'projection:workers';
