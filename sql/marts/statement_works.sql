-- One holder's earnings by work for a period (all platforms and rights together), for the PDF:
-- every work with a statement line, its exact amount and its cents (sums of the stored lines),
-- the generations that drew on it and their average attribution share, and the holder's
-- ownership share of each right in force for the period.
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
),
owned AS (
    SELECT work_id,
           max(share) FILTER (WHERE right_type = 'publishing') AS publishing_share,
           max(share) FILTER (WHERE right_type = 'master') AS master_share
    FROM staging.splits_in_force($period)
    WHERE rights_holder_id = $rights_holder_id
    GROUP BY ALL
)
SELECT l.work_id, w.iswc, w.isrc, w.title, w.composer,
       coalesce(sum(d.n_generations), 0) AS n_generations,
       -- a work drawn on by several platforms: the generation-weighted mean of their averages
       CAST(sum(d.avg_share * d.n_generations) / nullif(sum(d.n_generations), 0) AS DECIMAL(18, 9)) AS avg_share,
       sum(l.amount) AS amount,
       sum(l.output_exact) + sum(l.training_exact) AS exact_amount,
       sum(l.output_exact) AS output_royalty,
       sum(l.training_exact) AS training_royalty,
       any_value(o.publishing_share) AS publishing_share, any_value(o.master_share) AS master_share
FROM lines AS l
JOIN ref.works AS w USING (work_id)
LEFT JOIN drawn AS d USING (platform_id, work_id)
LEFT JOIN owned AS o USING (work_id)
GROUP BY l.work_id, w.iswc, w.isrc, w.title, w.composer
ORDER BY exact_amount DESC, amount DESC, l.work_id;
