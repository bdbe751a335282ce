-- How many of a period's disputes (portal.period_disputes) stand open, upheld and rejected,
-- with the disputed line amounts per currency; a status with none counts 0. Params: $period,
-- $as_of.
SELECT s.status, d.currency, count(d.dispute_id) AS disputes,
       coalesce(sum(d.line_amount), 0) AS disputed_amount
FROM (VALUES ('open', 0), ('upheld', 1), ('rejected', 2)) AS s(status, o)
LEFT JOIN portal.period_disputes($period, CAST($as_of AS TIMESTAMP)) AS d ON d.status = s.status
GROUP BY s.status, s.o, d.currency
ORDER BY s.o, d.currency;
