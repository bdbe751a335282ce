-- One generation's audio landmarks, from the frame registered as provenance_rows.
INSERT INTO provenance.landmarks SELECT hash, platform_id, generation_id, t FROM provenance_rows;
