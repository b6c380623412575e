-- The complaints naming each institution, as the rule "a closed institution's complaints are
-- flagged" knows them (services/cases/process_managers): noted by the process manager that
-- reacts to Complaint.Received, in the transaction in which it reads the institution's
-- status, so that a closure applied at the same time either sees the complaint here or is
-- seen by that process manager.
CREATE TABLE cases.institution_complaints (
    tenant_id text NOT NULL,
    institution_id uuid NOT NULL,
    complaint_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, institution_id, complaint_id)
);
SELECT cases.enable_tenant_rls('cases.institution_complaints');
