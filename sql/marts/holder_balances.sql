-- Each holder's ledger position for a period: earned, adjusted, paid out, carried forward.
SELECT rights_holder_id, currency,
       sum(amount) FILTER (WHERE period < $period) AS opening,
       sum(amount) FILTER (WHERE period = $period AND (transaction_id LIKE 'settle/%' OR transaction_id LIKE 'reverse/%')) AS earned,
       sum(amount) FILTER (WHERE period = $period AND transaction_id LIKE 'adjust/%') AS adjusted,
       -sum(amount) FILTER (WHERE period = $period AND transaction_id LIKE 'payout/%') AS paid_out,
       sum(amount) FILTER (WHERE period <= $period) AS closing
FROM staging.holder_postings
GROUP BY ALL
ORDER BY rights_holder_id;
