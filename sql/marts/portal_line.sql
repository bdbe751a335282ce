-- One statement line of one holder. Params: $period, $rights_holder_id, $platform_id, $work_id,
-- $right_type.
SELECT l.period, l.platform_id, l.work_id, w.title, l.right_type, l.n_generations,
       l.output_exact, l.training_exact, l.amount, l.currency, l.run_id
FROM settlement.statement_lines AS l
JOIN ref.works AS w USING (work_id)
WHERE l.period = $period AND l.rights_holder_id = $rights_holder_id AND l.platform_id = $platform_id
  AND l.work_id = $work_id AND l.right_type = $right_type;
