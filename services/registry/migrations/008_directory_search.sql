-- Text search in the institutions directory (`q` on the list, its downloads and the public
-- directory): a column the projection fills with the name and address folded (case, accents
-- and punctuation away: shared/projections/listing.py), matched word by word with LIKE.
ALTER TABLE registry.institutions ADD COLUMN search text NOT NULL DEFAULT '';
-- The history table keeps every column of the read model (the directory as of a date).
ALTER TABLE registry.institutions_history ADD COLUMN search text NOT NULL DEFAULT '';

-- A trigram index answers `search LIKE '%word%'` without reading every row. pg_trgm ships
-- with PostgreSQL's contrib (Debian's postgresql-15, CloudNativePG's images) and is a
-- trusted extension (a database owner may create it); the embedded `pgserver` wheel has no
-- contrib: there the same query scans the tenant's rows (still correct, and a few
-- milliseconds for thousands of rows), and this notice says why.
DO $$
DECLARE
    trgm_schema name;
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    SELECT extnamespace::regnamespace::name INTO trgm_schema
      FROM pg_extension WHERE extname = 'pg_trgm';
    EXECUTE format(
        'CREATE INDEX institutions_search ON registry.institutions USING gin (search %I.gin_trgm_ops)',
        trgm_schema);
EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%): the directory search scans without an index',
        SQLERRM;
END
$$;

-- The rows have no search text yet: the projection replays the log into both tables.
DELETE FROM registry.institutions;
DELETE FROM registry.institutions_history;
DELETE FROM registry.projection_positions WHERE projection = 'institutions';
DELETE FROM registry.stalls WHERE follower = 'projection:institutions';
