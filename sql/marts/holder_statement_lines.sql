-- One rights holder's statement lines for a period, every one of them (a line that rounds to
-- 0.00 still earned its exact amount and is listed): what each work earned, by platform and
-- right, exact (as the calculation stored it, 18 decimals) and rounded to the cent by the
-- calculation's largest-remainder allocation. With the holder's ownership share of the right
-- in force for the period and the platform's contract (its name, rate and id).
-- Params: $period, $rights_holder_id.
SELECT l.platform_id, pf.name AS platform_name, p.contract_id, p.pool_rate,
       l.work_id, w.iswc, w.isrc, w.title, w.composer, l.right_type, s.share AS ownership_share,
       l.n_generations, l.output_exact AS output_royalty, l.training_exact AS training_royalty,
       l.output_exact + l.training_exact AS exact_amount, l.amount, l.currency
FROM settlement.statement_lines AS l
JOIN ref.works AS w USING (work_id)
LEFT JOIN ref.platforms AS pf ON pf.platform_id = l.platform_id
LEFT JOIN settlement.pools AS p ON p.period = l.period AND p.platform_id = l.platform_id
LEFT JOIN staging.splits_in_force($period) AS s
       ON s.work_id = l.work_id AND s.right_type = l.right_type AND s.rights_holder_id = l.rights_holder_id
WHERE l.period = $period AND l.rights_holder_id = $rights_holder_id
ORDER BY l.amount DESC, l.output_exact + l.training_exact DESC, l.platform_id, l.work_id, l.right_type;
