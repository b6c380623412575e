-- The PDM a complaint belongs to (Complaint.Received v2) and the PDM of each institution
-- in the directory; NULL for rows from before (they belong to the province).
ALTER TABLE cases.complaints ADD COLUMN pdm text;
ALTER TABLE cases.institution_directory ADD COLUMN pdm text;

-- Reads see only the caller's PDM or institution (see registry's 002_actor_scope.sql).
CREATE POLICY actor_scope ON cases.complaints AS RESTRICTIVE FOR SELECT
    USING (coalesce(current_setting('app.scope_pdm', true), '') IN ('', pdm)
       AND coalesce(current_setting('app.scope_institution', true), '')
           IN ('', institution_id::text));
CREATE POLICY actor_scope ON cases.institution_directory AS RESTRICTIVE FOR SELECT
    USING (coalesce(current_setting('app.scope_pdm', true), '') IN ('', pdm)
       AND coalesce(current_setting('app.scope_institution', true), '')
           IN ('', institution_id::text));
