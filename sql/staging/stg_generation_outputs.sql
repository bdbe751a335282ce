-- Each generation's output, whatever its kind: tokens, or the audio file in the lake (path
-- relative to the lake root) and its sha256. What attribution and statements read outputs from.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE VIEW staging.generation_outputs AS
SELECT
    g.platform_id,
    g.generation_id,
    g.model_version,
    CASE WHEN a.generation_id IS NULL THEN 'tokens' ELSE 'audio' END AS output_kind,
    g.output_tokens,
    a.audio_path AS output_audio_path,
    a.audio_sha256 AS output_audio_sha256,
    a.audio_bytes AS output_audio_bytes,
    a.sample_rate AS output_audio_sample_rate,
    a.duration_s AS output_audio_duration_s
FROM raw.generations AS g
LEFT JOIN raw.generation_audio AS a USING (platform_id, generation_id);
