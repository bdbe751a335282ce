-- Rights holders with earnings in a period, with their totals.
SELECT h.rights_holder_id, r.name, r.kind, h.currency, sum(h.amount) AS amount
FROM settlement.holder_totals AS h
JOIN ref.rights_holders AS r USING (rights_holder_id)
WHERE h.period = $period
GROUP BY ALL
HAVING sum(h.amount) > 0
ORDER BY h.rights_holder_id;
