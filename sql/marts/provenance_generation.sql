-- What a provenance check answers about one generation: who made it with which model, and
-- whether (and in which period) it was settled.
SELECT g.platform_id, p.name AS platform_name, g.generation_id, g.model_version, g.created_at,
       s.period AS settled_period, a.audio_sha256
FROM raw.generations AS g
JOIN ref.platforms AS p USING (platform_id)
LEFT JOIN raw.generation_audio AS a USING (platform_id, generation_id)
LEFT JOIN settlement.settled_generations AS s USING (platform_id, generation_id)
WHERE g.platform_id = $platform_id AND g.generation_id = $generation_id;
