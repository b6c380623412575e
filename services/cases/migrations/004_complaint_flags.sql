-- What a case worker must look at on a complaint (Complaint.Flagged), in the order raised.
ALTER TABLE cases.complaints ADD COLUMN flags text[] NOT NULL DEFAULT '{}';
-- The process manager that flags complaints of a closed institution finds them by it.
CREATE INDEX complaints_by_institution ON cases.complaints (tenant_id, institution_id);
