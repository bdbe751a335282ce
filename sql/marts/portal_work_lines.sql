-- One work's statement lines for one holder over every period. Params: $rights_holder_id, $work_id.
SELECT l.period, l.platform_id, l.work_id, w.title, l.right_type, l.n_generations, l.amount, l.currency
FROM settlement.statement_lines AS l
JOIN ref.works AS w USING (work_id)
WHERE l.rights_holder_id = $rights_holder_id AND l.work_id = $work_id
ORDER BY l.period DESC, l.platform_id, l.right_type;
