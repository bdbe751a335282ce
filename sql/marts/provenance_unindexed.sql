-- Generations with content to fingerprint and no fingerprint yet: audio files in the lake, and
-- token outputs of platforms whose model version ships a tokenizer (symbolic).
SELECT g.platform_id, g.generation_id, g.model_version, a.audio_path, g.output_tokens, m.local_path
FROM raw.generations AS g
LEFT JOIN raw.generation_audio AS a USING (platform_id, generation_id)
LEFT JOIN ref.model_versions AS m USING (platform_id, model_version)
LEFT JOIN provenance.prints AS p USING (platform_id, generation_id)
WHERE p.generation_id IS NULL AND (a.audio_path IS NOT NULL OR g.output_tokens IS NOT NULL)
ORDER BY g.platform_id, g.generation_id
LIMIT $limit;
