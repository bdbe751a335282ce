-- Per platform, what a holder's statement says about the month: the platform's display name,
-- its generations and revenue (as the calculation stored them in settlement.pools), how many
-- of those generations drew on at least one of the holder's works, and the holder's lines.
-- Params: $period, $rights_holder_id.
WITH lines AS (
    SELECT platform_id, count(*) AS n_lines, sum(amount) AS amount,
           sum(output_exact) + sum(training_exact) AS exact_amount
    FROM settlement.statement_lines
    WHERE period = $period AND rights_holder_id = $rights_holder_id
    GROUP BY ALL
),
drawn AS (
    SELECT s.platform_id, count(DISTINCT s.generation_id) AS n_drawing
    FROM staging.shares AS s
    JOIN staging.generations AS g USING (platform_id, generation_id)
    WHERE g.period = $period AND NOT s.is_residual
      AND s.work_id IN (SELECT work_id FROM settlement.statement_lines
                        WHERE period = $period AND rights_holder_id = $rights_holder_id)
    GROUP BY ALL
)
SELECT l.platform_id, coalesce(pf.name, l.platform_id) AS platform_name, p.n_generations,
       p.revenue, p.currency, coalesce(d.n_drawing, 0) AS n_drawing, l.n_lines, l.amount, l.exact_amount
FROM lines AS l
LEFT JOIN ref.platforms AS pf USING (platform_id)
LEFT JOIN settlement.pools AS p ON p.period = $period AND p.platform_id = l.platform_id
LEFT JOIN drawn AS d USING (platform_id)
ORDER BY l.platform_id;
