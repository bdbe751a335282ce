-- One generation's melody n-grams, from the frame registered as provenance_rows.
INSERT INTO provenance.midi_grams SELECT gram, platform_id, generation_id FROM provenance_rows;
