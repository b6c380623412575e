-- Organisation units (PDM, PCM, PDA, PCA) and policies: read models guarded per tenant by
-- RLS and narrowed to a PDM operator's PDM (`pdm`: the regency a unit or policy lies in).
CREATE TABLE registry.organisation_units (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    kind text NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    parent text,
    pdm text NOT NULL,
    status text NOT NULL,
    merged_into text,
    version bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX organisation_units_by_code ON registry.organisation_units (tenant_id, kind, code);
-- Units belong to a PDM, never to one institution: a reader scoped to an institution sees none.
SELECT registry.enable_tenant_rls('registry.organisation_units', pdm_column => 'pdm');
-- Every version of every unit: the list as of any date.
SELECT registry.add_history('registry.organisation_units', pdm_column => 'pdm');

CREATE TABLE registry.policies (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    level text NOT NULL,
    rule text NOT NULL,
    title text NOT NULL,
    summary text NOT NULL,
    pdm text NOT NULL,
    institution_id uuid,
    unit_kind text,
    unit text,
    approver_kind text NOT NULL,
    approver text NOT NULL,
    approver_id uuid NOT NULL,
    status text NOT NULL,
    proposed_by text NOT NULL,
    decided_by text,
    remarks text,
    supersedes uuid,
    superseded_by uuid,
    version bigint NOT NULL,
    proposed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- The approval inbox: what awaits one council's decision, oldest first.
CREATE INDEX policies_awaiting ON registry.policies
    (tenant_id, approver_id, proposed_at) WHERE status = 'proposed';
SELECT registry.enable_tenant_rls(
    'registry.policies', pdm_column => 'pdm', institution_column => 'institution_id');

-- Institutions: the branch each sits under (NULL: directly under its PDM).
ALTER TABLE registry.institutions ADD COLUMN unit text;
ALTER TABLE registry.institutions_history ADD COLUMN unit text;
