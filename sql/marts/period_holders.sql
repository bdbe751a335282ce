-- Rights holders who get a statement for a period: everyone with earnings in it, and everyone
-- whose payable moved or still carries a balance (a holder below the payout threshold keeps
-- getting statements that show the balance carried forward).
WITH earners AS (
    SELECT rights_holder_id, currency FROM settlement.holder_totals
    WHERE period = $period
    GROUP BY ALL
    HAVING sum(amount) > 0
),
payables AS (
    SELECT rights_holder_id, currency
    FROM staging.holder_postings
    WHERE period <= $period
    GROUP BY ALL
    HAVING sum(amount) <> 0 OR count(*) FILTER (WHERE period = $period) > 0
),
holders AS (
    SELECT * FROM earners UNION SELECT * FROM payables
)
SELECT h.rights_holder_id, r.name, r.kind, r.min_payout,
       string_agg(DISTINCT h.currency, ',' ORDER BY h.currency) AS currency
FROM holders AS h
JOIN ref.rights_holders AS r USING (rights_holder_id)
GROUP BY ALL
ORDER BY h.rights_holder_id;
