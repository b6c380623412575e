-- Who complained, when they say (Complaint.Received v3): their data subject id, and their
-- name and contact as the service's own read model holds them (`[erased]` once erased).
ALTER TABLE cases.complaints
    ADD COLUMN complainant_subject uuid,
    ADD COLUMN complainant_name text,
    ADD COLUMN complainant_contact text;
CREATE INDEX complaints_complainant ON cases.complaints (tenant_id, complainant_subject)
    WHERE complainant_subject IS NOT NULL;
