-- One rights holder's statement for a period: what each work earned, by platform and right.
SELECT l.platform_id, l.work_id, w.iswc, w.isrc, w.title, w.composer, l.right_type,
       l.n_generations, l.amount, l.currency,
       CAST(l.output_exact AS DECIMAL(38, 6)) AS output_royalty,
       CAST(l.training_exact AS DECIMAL(38, 6)) AS training_royalty
FROM settlement.statement_lines AS l
JOIN ref.works AS w USING (work_id)
WHERE l.period = $period AND l.rights_holder_id = $rights_holder_id AND l.amount <> 0
ORDER BY l.amount DESC, l.platform_id, l.work_id, l.right_type;
