-- yeyak read models, version 4: the clinic's road address (ClinicRegistered v2).
-- Never edit a released migration: add 005_*.sql.
--
-- NULL for a clinic registered without one (every ClinicRegistered v1 record, and a v2 record
-- whose registration gave none). One short line, Korean road address, as the operator typed it.
ALTER TABLE clinics ADD COLUMN address text;
