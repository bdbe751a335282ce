-- A holder's statements: every period with statement files for it, the period's state and what
-- the holder earned in it (the stored holder totals, per currency). Params: $rights_holder_id.
WITH periods AS (
    SELECT DISTINCT period FROM settlement.statement_files WHERE rights_holder_id = $rights_holder_id
)
SELECT p.period, coalesce(s.status, 'open') AS status, t.currency,
       coalesce(sum(t.amount), 0) AS amount
FROM periods AS p
LEFT JOIN settlement.periods AS s USING (period)
LEFT JOIN settlement.holder_totals AS t ON t.period = p.period AND t.rights_holder_id = $rights_holder_id
GROUP BY ALL
ORDER BY p.period DESC, t.currency;
