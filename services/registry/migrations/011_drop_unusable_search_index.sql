-- The trigram index of migration 008 answered `search LIKE '%word%'` for the owner login
-- only. The services read under row-level security, and LIKE is not a leakproof operator:
-- PostgreSQL evaluates it after the policies, so it can never be an index condition there.
-- A province's search walks the province's rows (an index on tenant_id) and filters them
-- (8.6 ms for 30,000 rows of one province on the development machine), with or without
-- the index, while every projected institution paid for the index (an insert: 20 instead
-- of 14 µs of PostgreSQL time).
DROP INDEX IF EXISTS registry.institutions_search;
