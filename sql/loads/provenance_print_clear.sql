-- Before (re)writing a generation's hashes: none left from an earlier, interrupted write.
DELETE FROM provenance.landmarks WHERE platform_id = $platform_id AND generation_id = $generation_id;
DELETE FROM provenance.midi_grams WHERE platform_id = $platform_id AND generation_id = $generation_id;
