-- A holder's earnings over months by work, by platform and by right type: the stored statement
-- lines summed per period in one pass (GROUPING SETS). `dimension` says which grouping a row
-- belongs to. Params: $rights_holder_id.
SELECT period,
       CASE WHEN GROUPING(work_id) = 0 THEN 'work'
            WHEN GROUPING(platform_id) = 0 THEN 'platform' ELSE 'right_type' END AS dimension,
       coalesce(work_id, platform_id, right_type) AS key, currency, sum(amount) AS amount
FROM settlement.statement_lines
WHERE rights_holder_id = $rights_holder_id
GROUP BY GROUPING SETS ((period, currency, work_id), (period, currency, platform_id),
                        (period, currency, right_type))
ORDER BY dimension, key, period, currency;
