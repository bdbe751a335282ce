-- A logged audio generation whose file has exactly this sha256.
SELECT platform_id, generation_id FROM raw.generation_audio WHERE audio_sha256 = $sha256
ORDER BY platform_id, generation_id LIMIT 1;
