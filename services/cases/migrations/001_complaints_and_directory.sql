-- Institutions cases knows of, learned from the registry's events (never its tables).
CREATE TABLE cases.institution_directory (
    tenant_id text NOT NULL,
    institution_id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    source_version bigint NOT NULL,
    PRIMARY KEY (tenant_id, institution_id)
);

CREATE TABLE cases.complaints (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    channel text NOT NULL,
    summary text NOT NULL,
    concerns_child boolean NOT NULL,
    institution_id uuid,
    version bigint NOT NULL,
    received_at timestamptz NOT NULL,
    received_by text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE cases.institution_directory ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cases.institution_directory
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

ALTER TABLE cases.complaints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cases.complaints
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
