-- Holders due a payout at the close of a period: ledger balance (everything up to and
-- including the period) that is positive and reached the holder's minimum payout. A table
-- macro, because the period is a parameter; the close and its FX gate both read it.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE MACRO staging.payouts_due(through_period) AS TABLE
WITH balances AS (
    SELECT p.rights_holder_id, p.currency, sum(p.amount) AS balance
    FROM staging.holder_postings AS p
    WHERE p.period <= through_period
    GROUP BY ALL
)
SELECT b.rights_holder_id, b.currency, b.balance, h.payout_currency
FROM balances AS b
JOIN ref.rights_holders AS h USING (rights_holder_id)
WHERE b.balance > 0 AND b.balance >= h.min_payout;
