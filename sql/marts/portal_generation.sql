-- One generation as a holder may see it: only when it paid one of the holder's statement lines.
-- One row per line it paid, with the generation's output (tokens or audio file) and the model
-- version's folder (its tokenizer.json decodes tokens). Params: $rights_holder_id,
-- $platform_id, $generation_id.
SELECT a.period, a.platform_id, a.generation_id, a.created_at, a.work_id, w.title, a.right_type,
       a.share, a.rank, a.method, a.model_version, a.attribution_run_id, a.contract_id,
       a.contract_version, g.style, g.output_tokens, au.audio_path, au.audio_sha256, au.audio_bytes,
       au.duration_s, mv.local_path AS model_path
FROM audit.statement_line_generations AS a
JOIN raw.generations AS g USING (platform_id, generation_id)
JOIN ref.works AS w ON w.work_id = a.work_id
LEFT JOIN raw.generation_audio AS au ON au.platform_id = a.platform_id AND au.generation_id = a.generation_id
LEFT JOIN ref.model_versions AS mv ON mv.platform_id = a.platform_id AND mv.model_version = a.model_version
WHERE a.rights_holder_id = $rights_holder_id AND a.platform_id = $platform_id
  AND a.generation_id = $generation_id
ORDER BY a.period, a.work_id, a.right_type;
