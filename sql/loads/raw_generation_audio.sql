-- Where each landed audio generation's file is in the lake, with its sha256 (checked against
-- the downloaded bytes by settlement/ingest.py). Runs with loads/raw_generations, in the same
-- transaction; a generation already recorded is left as it is.
INSERT INTO raw.generation_audio
SELECT
    platform_id,
    generation_id,
    output_audio_path,
    output_audio_sha256,
    output_audio_bytes,
    output_audio_sample_rate,
    output_audio_duration_s,
    $run_id AS ingest_run_id,
    $now AS loaded_at
FROM staged_generations
WHERE output_kind = 'audio'
  AND NOT EXISTS (
    SELECT 1 FROM raw.generation_audio AS a
    WHERE a.platform_id = staged_generations.platform_id
      AND a.generation_id = staged_generations.generation_id
);
