-- The policies of 001 and 002, re-declared by the kernel's helper (shared/db/sql/kernel.sql),
-- which every new read-model table calls the same way.
SELECT registry.enable_tenant_rls(
    'registry.institutions', pdm_column => 'pdm', institution_column => 'id');
