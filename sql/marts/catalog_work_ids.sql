-- Work ids already in the catalog (a splits file may name them without repeating the work).
SELECT work_id FROM ref.works;
