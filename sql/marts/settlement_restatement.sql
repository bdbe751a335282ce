-- A closed period recomputed with what is known now (calc_* temp tables, $corrects_period)
-- against what it paid plus corrections already paid for it elsewhere. The difference per
-- holder is paid as an adjustment in the open period $period; the closed period stays as it is.
INSERT INTO settlement.adjustments
WITH paid AS (
    SELECT platform_id, rights_holder_id, currency, amount
    FROM settlement.holder_totals WHERE period = $corrects_period
    UNION ALL
    SELECT platform_id, rights_holder_id, currency, amount
    FROM settlement.adjustments WHERE corrects_period = $corrects_period AND period <> $period
),
paid_by_holder AS (
    SELECT platform_id, rights_holder_id, currency, sum(amount) AS amount FROM paid GROUP BY ALL
),
now_due AS (
    SELECT platform_id, rights_holder_id, currency, amount FROM calc_holder_totals
),
late AS (
    SELECT g.platform_id, count(*) AS n_late
    FROM staging.generations AS g
    WHERE g.period = $corrects_period
      AND NOT EXISTS (SELECT 1 FROM settlement.settled_generations AS s
                      WHERE s.platform_id = g.platform_id AND s.generation_id = g.generation_id)
    GROUP BY ALL
)
SELECT $period, $corrects_period, platform_id, rights_holder_id,
       coalesce(n.amount, 0) - coalesce(p.amount, 0) AS amount,
       coalesce(n.currency, p.currency),
       CASE WHEN coalesce(l.n_late, 0) > 0
            THEN 'corrects ' || $corrects_period || ': ' || CAST(l.n_late AS VARCHAR) || ' late generation(s)'
                 || ' and any change of splits or contract since its close'
            ELSE 'corrects ' || $corrects_period || ': splits or contract changed since its close' END,
       $run_id
FROM now_due AS n
FULL JOIN paid_by_holder AS p USING (platform_id, rights_holder_id)
LEFT JOIN late AS l USING (platform_id)
WHERE coalesce(n.amount, 0) <> coalesce(p.amount, 0);
