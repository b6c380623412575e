-- Reads see only the caller's PDM or institution: shared/http/reads.py sets app.scope_pdm /
-- app.scope_institution from the token in each read transaction. Empty or unset means the
-- whole province (projections and province-wide readers). Restrictive: it narrows the
-- tenant policy, never widens it.
CREATE POLICY actor_scope ON registry.institutions AS RESTRICTIVE FOR SELECT
    USING (coalesce(current_setting('app.scope_pdm', true), '') IN ('', pdm)
       AND coalesce(current_setting('app.scope_institution', true), '') IN ('', id::text));
