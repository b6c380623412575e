-- The policies of 001 and 002, re-declared by the kernel's helper (shared/db/sql/kernel.sql),
-- which every new read-model table calls the same way. Workers belong to no institution yet:
-- institution staff see none.
SELECT hr.enable_tenant_rls('hr.workers', pdm_column => 'pdm');
