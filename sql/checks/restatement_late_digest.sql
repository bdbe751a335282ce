-- The generations of a closed period that its close did not pay for (late arrivals), with
-- their attribution: only read when the period's generation count grew. Params: $period.
WITH late AS (
    SELECT g.* FROM staging.generations_in($period) AS g
    WHERE NOT EXISTS (SELECT 1 FROM settlement.settled_generations AS s
                      WHERE s.platform_id = g.platform_id AND s.generation_id = g.generation_id)
),
items AS (
    SELECT hash('g', platform_id, generation_id, model_version, revenue_amount, revenue_currency) AS h FROM late
    UNION ALL
    SELECT hash('s', s.platform_id, s.generation_id, s.work_id, s.share, s.run_id)
    FROM staging.shares AS s SEMI JOIN late AS l USING (platform_id, generation_id)
    UNION ALL
    SELECT hash('d', d.platform_id, d.generation_id, d.run_id, d.rule, d.alpha, d.min_confidence,
                d.confidence, d.p_value, d.paid_by)
    FROM attribution.share_rules AS d SEMI JOIN late AS l USING (platform_id, generation_id)
    UNION ALL
    SELECT hash('q', q.platform_id, q.generation_id, q.rights_holder_id, q.run_id, q.share, q.method)
    FROM attribution.group_shares AS q SEMI JOIN late AS l USING (platform_id, generation_id)
    UNION ALL
    SELECT hash('r', r.platform_id, r.generation_id, r.run_id)
    FROM attribution.rejections AS r SEMI JOIN late AS l USING (platform_id, generation_id)
)
SELECT CAST(count(*) AS VARCHAR) || '|' || CAST(coalesce(bit_xor(h), 0) AS VARCHAR)
       || '|' || CAST(coalesce(sum(CAST(h AS HUGEINT)), 0) AS VARCHAR) AS digest
FROM items;
