-- The policies of 001 and 002, re-declared by the kernel's helper (shared/db/sql/kernel.sql),
-- which every new read-model table calls the same way.
SELECT cases.enable_tenant_rls(
    'cases.complaints', pdm_column => 'pdm', institution_column => 'institution_id');
SELECT cases.enable_tenant_rls(
    'cases.institution_directory', pdm_column => 'pdm', institution_column => 'institution_id');
