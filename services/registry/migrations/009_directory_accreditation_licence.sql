-- The directory shows and filters each institution's accreditation and operating licence
-- (projections/institutions.py): columns of its own row, written by the institutions
-- projection from the Accreditation and Licence events, so a list (and a list as of a date,
-- from the history table) stays one query on one table.
--   grade: the accreditation in one word (A, B, C, not_accredited, expired, revoked,
--     never_assessed); accredited_until: the valid-until of the decision shown.
--   licence_id / licence_status / licence_valid_until: the operating licence (Izin
--     Operasional); its state on a day (valid, expiring, expired) is computed when read.
ALTER TABLE registry.institutions
    ADD COLUMN grade text NOT NULL DEFAULT 'never_assessed',
    ADD COLUMN accredited_until date,
    ADD COLUMN licence_id uuid,
    ADD COLUMN licence_status text,
    ADD COLUMN licence_valid_until date;
ALTER TABLE registry.institutions_history
    ADD COLUMN grade text NOT NULL DEFAULT 'never_assessed',
    ADD COLUMN accredited_until date,
    ADD COLUMN licence_id uuid,
    ADD COLUMN licence_status text,
    ADD COLUMN licence_valid_until date;

-- An accreditation or licence event adds a version to the row's history without changing
-- its `version` (the institution's own, for If-Match): one version now spans periods.
ALTER TABLE registry.institutions_history DROP CONSTRAINT institutions_history_pkey;
ALTER TABLE registry.institutions_history
    ADD PRIMARY KEY (tenant_id, id, version, valid_from);

-- The filters that narrow most: by branch and by accreditation, within a tenant.
CREATE INDEX institutions_by_unit ON registry.institutions (tenant_id, unit);
CREATE INDEX institutions_by_grade ON registry.institutions (tenant_id, grade);
-- A licence's renewal or revocation names the licence, not the institution.
CREATE INDEX institutions_by_licence ON registry.institutions (tenant_id, licence_id);

-- The rows know no accreditation or licence yet: the projection replays the log into both
-- tables.
DELETE FROM registry.institutions;
DELETE FROM registry.institutions_history;
DELETE FROM registry.projection_positions WHERE projection = 'institutions';
DELETE FROM registry.stalls WHERE follower = 'projection:institutions';
