-- Each holder's ledger position for a period: earned, adjusted, paid out, carried forward.
SELECT substr(account, length('holder_payable:') + 1) AS rights_holder_id, currency,
       sum(amount) FILTER (WHERE period < $period) AS opening,
       sum(amount) FILTER (WHERE period = $period AND (transaction_id LIKE 'settle/%' OR transaction_id LIKE 'reverse/%')) AS earned,
       sum(amount) FILTER (WHERE period = $period AND transaction_id LIKE 'adjust/%') AS adjusted,
       -sum(amount) FILTER (WHERE period = $period AND transaction_id LIKE 'payout/%') AS paid_out,
       sum(amount) FILTER (WHERE period <= $period) AS closing
FROM ledger.postings
WHERE account LIKE 'holder_payable:%'
GROUP BY ALL
ORDER BY rights_holder_id;
