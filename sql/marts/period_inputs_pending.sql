-- What the settlement of $period still waits for before it may start: ingest that has not yet
-- got past the month's end for a platform under contract, and generations of the month that
-- attribution has not reached. The monthly DAG's first task waits until this is empty
-- (the gates in checks/period_readiness then decide whether the month is whole).
WITH bounds AS (
    SELECT CAST(strptime($period, '%Y-%m') AS TIMESTAMP) + INTERVAL 1 MONTH AS month_end
)
SELECT 'ingest' AS waiting_for, due.platform_id AS subject,
       'ingest of ' || due.platform_id || ' has reached '
       || coalesce(strftime(max(w.window_end), '%Y-%m-%d %H:%M'), 'nothing yet')
       || ', not the end of ' || $period AS detail
FROM staging.platforms_due($period) AS due
CROSS JOIN bounds AS b
LEFT JOIN raw.ingest_windows AS w ON w.platform_id = due.platform_id
GROUP BY due.platform_id, b.month_end
HAVING coalesce(max(w.window_end) >= b.month_end, false) = false

UNION ALL
SELECT 'attribution', g.platform_id,
       CAST(count(*) AS VARCHAR) || ' generation(s) of ' || g.platform_id || ' in ' || $period
       || ' not yet attributed or rejected'
FROM staging.unattributed_in($period) AS g
GROUP BY g.platform_id
ORDER BY 1, 2;
