-- The period in the ledger, per currency, summed over every rights holder: what was owed at
-- the start, earned, adjusted, paid out, and what is carried forward to the next period.
WITH holders AS (
    SELECT rights_holder_id, currency,
           coalesce(sum(amount) FILTER (WHERE period < $period), 0) AS opening,
           coalesce(sum(amount) FILTER (WHERE period = $period AND transaction_id NOT LIKE 'payout/%'
                                        AND transaction_id NOT LIKE 'adjust/%'
                                        AND transaction_id NOT LIKE 'reverse/adjust/%'), 0) AS earned,
           coalesce(sum(amount) FILTER (WHERE period = $period AND (transaction_id LIKE 'adjust/%'
                                        OR transaction_id LIKE 'reverse/adjust/%')), 0) AS adjusted,
           coalesce(-sum(amount) FILTER (WHERE period = $period AND transaction_id LIKE 'payout/%'), 0) AS paid_out,
           sum(amount) AS closing
    FROM staging.holder_postings
    WHERE period <= $period
    GROUP BY ALL
)
SELECT currency, sum(opening) AS opening, sum(earned) AS earned, sum(adjusted) AS adjusted,
       sum(paid_out) AS paid_out, sum(closing) AS carried_forward,
       count(*) FILTER (WHERE paid_out <> 0) AS holders_paid,
       count(*) FILTER (WHERE closing <> 0) AS holders_carrying_forward
FROM holders
GROUP BY ALL
ORDER BY currency;
