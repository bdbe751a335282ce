-- One holder's earnings by work for a period (all platforms and rights together), with the
-- generations that drew on the work and their average attribution share, for the PDF.
-- Params: $period, $rights_holder_id.
WITH lines AS (
    SELECT platform_id, work_id, sum(amount) AS amount,
           sum(output_exact) AS output_exact, sum(training_exact) AS training_exact
    FROM settlement.statement_lines
    WHERE period = $period AND rights_holder_id = $rights_holder_id
    GROUP BY ALL
),
drawn AS (
    SELECT s.platform_id, s.work_id, count(DISTINCT s.generation_id) AS n_generations,
           avg(s.share) AS avg_share
    FROM staging.shares AS s
    JOIN staging.generations AS g USING (platform_id, generation_id)
    WHERE g.period = $period AND NOT s.is_residual
      AND s.work_id IN (SELECT work_id FROM lines)
    GROUP BY ALL
)
SELECT l.work_id, w.iswc, w.isrc, w.title, w.composer,
       coalesce(sum(d.n_generations), 0) AS n_generations,
       -- a work drawn on by several platforms: the generation-weighted mean of their averages
       CAST(sum(d.avg_share * d.n_generations) / nullif(sum(d.n_generations), 0) AS DECIMAL(18, 9)) AS avg_share,
       sum(l.amount) AS amount,
       CAST(sum(l.output_exact) AS DECIMAL(38, 6)) AS output_royalty,
       CAST(sum(l.training_exact) AS DECIMAL(38, 6)) AS training_royalty
FROM lines AS l
JOIN ref.works AS w USING (work_id)
LEFT JOIN drawn AS d USING (platform_id, work_id)
GROUP BY ALL
HAVING sum(l.amount) <> 0
ORDER BY amount DESC, l.work_id;
