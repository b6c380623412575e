-- The accreditation register: one row per institution assessed, its current decision
-- (projections/accreditation.py). The decision columns are empty only within the commit
-- that opens the record with its first decision.
CREATE TABLE registry.accreditations (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    institution_id uuid NOT NULL,
    pdm text NOT NULL,
    status text,
    grade text,
    programme int,
    human_resources int,
    management int,
    facilities int,
    service_results int,
    decided_on date,
    certificate_number text,
    regulation text,
    valid_until date,
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX accreditations_by_institution
    ON registry.accreditations (tenant_id, institution_id);
CREATE INDEX accreditations_by_valid_until
    ON registry.accreditations (tenant_id, valid_until) WHERE status = 'accredited';
SELECT registry.enable_tenant_rls(
    'registry.accreditations', pdm_column => 'pdm', institution_column => 'institution_id');
SELECT registry.add_history(
    'registry.accreditations', pdm_column => 'pdm', institution_column => 'institution_id');

-- Licences: the registration letter and the operating licence of each institution
-- (projections/licences.py).
CREATE TABLE registry.licences (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    institution_id uuid NOT NULL,
    pdm text NOT NULL,
    kind text NOT NULL,
    number text NOT NULL,
    issuer text NOT NULL,
    issued_on date NOT NULL,
    valid_until date,
    status text NOT NULL,
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX licences_by_valid_until ON registry.licences (tenant_id, valid_until);
SELECT registry.enable_tenant_rls(
    'registry.licences', pdm_column => 'pdm', institution_column => 'institution_id');
SELECT registry.add_history(
    'registry.licences', pdm_column => 'pdm', institution_column => 'institution_id');

-- The institutions as the accreditation register and the licence lists show them (name,
-- type) and count them (closed ones count in no figure): kept by the accreditation
-- projection from the institutions' events, so its queries read only its own tables.
CREATE TABLE registry.accreditation_institutions (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    pdm text NOT NULL,
    status text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT registry.enable_tenant_rls(
    'registry.accreditation_institutions', pdm_column => 'pdm', institution_column => 'id');
