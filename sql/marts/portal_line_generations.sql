-- The generations behind one holder's statement line (audit.statement_line_generations): the
-- attribution share of the work, the method and the contract that paid it, and whether the
-- output is audio. Params: $period, $rights_holder_id, $platform_id, $work_id, $right_type.
SELECT a.generation_id, a.created_at, a.share, a.rank, a.method, a.model_version,
       a.attribution_run_id, a.contract_id, a.contract_version,
       CASE WHEN ga.generation_id IS NULL THEN 'symbolic' ELSE 'audio' END AS output_kind
FROM audit.statement_line_generations AS a
LEFT JOIN raw.generation_audio AS ga USING (platform_id, generation_id)
WHERE a.period = $period AND a.rights_holder_id = $rights_holder_id AND a.platform_id = $platform_id
  AND a.work_id = $work_id AND a.right_type = $right_type
ORDER BY a.share DESC, a.generation_id;
