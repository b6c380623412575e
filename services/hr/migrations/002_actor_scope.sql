-- Reads see only the caller's PDM (see registry's 002_actor_scope.sql). A worker without a
-- PDM serves the whole province; workers belong to no institution yet, so institution staff
-- see none until deployment to institutions is recorded.
CREATE POLICY actor_scope ON hr.workers AS RESTRICTIVE FOR SELECT
    USING (coalesce(current_setting('app.scope_pdm', true), '') IN ('', pdm)
       AND coalesce(current_setting('app.scope_institution', true), '') = '');
