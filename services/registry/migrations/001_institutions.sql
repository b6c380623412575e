-- Read model of institutions, one row per institution, guarded per tenant by RLS.
CREATE TABLE registry.institutions (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    owner text NOT NULL,
    pdm text NOT NULL,
    address text,
    status text NOT NULL,
    version bigint NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX institutions_by_pdm ON registry.institutions (tenant_id, pdm);

ALTER TABLE registry.institutions ENABLE ROW LEVEL SECURITY;
-- current_setting(..., true) is NULL when unset, so a query without a tenant sees nothing.
CREATE POLICY tenant_isolation ON registry.institutions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
