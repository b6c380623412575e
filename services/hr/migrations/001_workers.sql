-- Read model of social workers, guarded per tenant by RLS.
CREATE TABLE hr.workers (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    full_name text NOT NULL,
    birth_date date NOT NULL,
    pdm text,
    version bigint NOT NULL,
    registered_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

ALTER TABLE hr.workers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON hr.workers
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
