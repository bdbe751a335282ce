-- Generations of this load that are new to the warehouse and belong to a closed period:
-- flagged for the next open period's adjustments. Run before loads/raw_generations.
INSERT OR IGNORE INTO raw.late_arrivals
SELECT
    s.platform_id,
    s.generation_id,
    s.created_at,
    strftime(s.created_at, '%Y-%m') AS original_period,
    (
        SELECT strftime(strptime(max(period), '%Y-%m') + INTERVAL 1 MONTH, '%Y-%m')
        FROM settlement.periods
        WHERE status = 'closed'
    ) AS adjust_in_period,
    s.revenue_amount,
    s.revenue_currency,
    $run_id,
    $now,
    NULL
FROM staged_generations AS s
JOIN settlement.periods AS p
    ON p.period = strftime(s.created_at, '%Y-%m') AND p.status = 'closed'
WHERE NOT EXISTS (
    SELECT 1 FROM raw.generations AS g
    WHERE g.platform_id = s.platform_id AND g.generation_id = s.generation_id
);
