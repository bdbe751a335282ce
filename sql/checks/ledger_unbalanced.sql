-- Ledger transactions that do not sum to zero (there must be none).
SELECT transaction_id, currency, sum(amount) AS imbalance
FROM ledger.postings
GROUP BY ALL
HAVING sum(amount) <> 0;
