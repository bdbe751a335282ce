-- At close, pay every holder whose balance reached its minimum payout; smaller balances carry
-- forward to the next period (no posting: the balance simply stays on holder_payable).
INSERT INTO ledger.postings (transaction_id, period, account, amount, currency, memo, run_id, posted_at)
WITH balances AS (
    SELECT substr(p.account, length('holder_payable:') + 1) AS rights_holder_id, p.currency,
           sum(p.amount) AS balance
    FROM ledger.postings AS p
    WHERE p.account LIKE 'holder_payable:%' AND p.period <= $period
    GROUP BY ALL
),
due AS (
    SELECT b.* FROM balances AS b
    JOIN ref.rights_holders AS h USING (rights_holder_id)
    WHERE b.balance > 0 AND b.balance >= h.min_payout
)
SELECT 'payout/' || $period || '/' || rights_holder_id, $period, 'holder_payable:' || rights_holder_id,
       -balance, currency, 'payout for ' || $period, $run_id, $now
FROM due
UNION ALL
SELECT 'payout/' || $period || '/' || rights_holder_id, $period, 'payouts_due:' || currency,
       balance, currency, 'payout to ' || rights_holder_id || ' for ' || $period, $run_id, $now
FROM due;
