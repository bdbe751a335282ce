-- Is it the month's turn, and is the month whole? Rows in the same (rule, subject, detail) shape
-- as checks/period_exceptions; the calculation reports both lists together. Kept apart from
-- period_exceptions because restating a closed month (settlement.calculate) re-checks that
-- month's reference data, not whether it may be settled now.
-- Params: $period (YYYY-MM).

-- A month is whole: every day of it landed and reconciled for every platform under contract.
SELECT 'ingest_incomplete' AS rule,
       g.platform_id || ' ' || CASE WHEN g.n_days = 1 THEN CAST(g.first_day AS VARCHAR)
                                    ELSE CAST(g.first_day AS VARCHAR) || '..' || CAST(g.last_day AS VARCHAR) END
           AS subject,
       'platform ' || g.platform_id || ' has no reconciled ingest window for '
       || CASE WHEN g.n_days = 1 THEN CAST(g.first_day AS VARCHAR)
               ELSE CAST(g.n_days AS VARCHAR) || ' days, ' || CAST(g.first_day AS VARCHAR) || ' to '
                    || CAST(g.last_day AS VARCHAR) END
       || ': run ingest_generation_logs for it once the platform delivers' AS detail
FROM staging.ingest_gaps($period) AS g

UNION ALL
-- Months are settled in order.
SELECT 'previous_period_open', o.period,
       o.period || ' is ' || o.status || ', not closed: close it before ' || $period
       || ' (or record why it need not be: tributary period waive-order ' || $period
       || ' --by NAME --reason TEXT)'
FROM staging.previous_period_open($period) AS o

UNION ALL
SELECT 'later_period_closed', l.period,
       l.period || ' is already closed: ' || $period || ' can no longer be settled; '
       || 'its late generations are paid as adjustments in the next open month'
FROM staging.later_periods_closed($period) AS l

ORDER BY rule, subject;
