-- A page of the whole directory walks this index in the list's order (name, id) and stops
-- after the page, instead of reading and sorting every institution of the province
-- (shared/projections/listing.py); the history's serves the directory as of a date.
CREATE INDEX institutions_by_name ON registry.institutions (tenant_id, name, id);
CREATE INDEX institutions_history_by_name
    ON registry.institutions_history (tenant_id, name, id);

-- The accreditation register and the licence lists join the directory for an
-- institution's name and type (its history for a list as of a date): the copy of them
-- the accreditation projection kept, written at every registration, goes.
DROP TABLE registry.accreditation_institutions;
