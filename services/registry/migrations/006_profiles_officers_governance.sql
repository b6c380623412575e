-- The institution's profile (one row per institution, beside registry.institutions so the
-- directory's columns and these change apart), the beneficiaries it reported per period,
-- its officers, and its governance timeline. Each guarded per tenant and scope by RLS.
CREATE TABLE registry.institution_profiles (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    pdm text NOT NULL,
    address text,
    regency text,
    capacity integer,
    services text[] NOT NULL DEFAULT '{}',
    phone text,
    email text,
    -- The institution's version (every event of it), the ETag If-Match sends back.
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT registry.enable_tenant_rls(
    'registry.institution_profiles', pdm_column => 'pdm', institution_column => 'id');

CREATE TABLE registry.institution_beneficiaries (
    tenant_id text NOT NULL,
    institution_id uuid NOT NULL,
    pdm text NOT NULL,
    period text NOT NULL,
    children integer NOT NULL,
    elderly integer NOT NULL,
    persons_with_disabilities integer NOT NULL,
    families integer NOT NULL,
    others integer NOT NULL,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, institution_id, period)
);
SELECT registry.enable_tenant_rls(
    'registry.institution_beneficiaries', pdm_column => 'pdm',
    institution_column => 'institution_id');

-- One row per appointment; name, NIK and phone are personal data (blanked on erasure).
CREATE TABLE registry.officers (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    institution_id uuid NOT NULL,
    pdm text NOT NULL,
    role text NOT NULL,
    full_name text NOT NULL,
    nik text NOT NULL,
    phone text,
    term_start date NOT NULL,
    term_end date NOT NULL,
    dismissed_on date,
    appointed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX officers_by_institution ON registry.officers (tenant_id, institution_id);
SELECT registry.enable_tenant_rls(
    'registry.officers', pdm_column => 'pdm', institution_column => 'institution_id');

-- Every governance event of an institution, in log order; no personal data (an officer's
-- name is joined from registry.officers at read, so erasure blanks it here too).
CREATE TABLE registry.governance_timeline (
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    institution_id uuid NOT NULL,
    pdm text NOT NULL,
    version bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    event text NOT NULL,
    actor text NOT NULL,
    reason text,
    officer_id uuid,
    details text NOT NULL,
    PRIMARY KEY (tenant_id, position)
);
CREATE INDEX governance_by_institution
    ON registry.governance_timeline (tenant_id, institution_id, position);
SELECT registry.enable_tenant_rls(
    'registry.governance_timeline', pdm_column => 'pdm', institution_column => 'institution_id');
