-- At close, pay every holder whose balance reached its minimum payout; smaller balances carry
-- forward to the next period (no posting: the balance simply stays on holder_payable).
INSERT INTO ledger.postings (transaction_id, period, account, amount, currency, memo, run_id, posted_at)
SELECT 'payout/' || $period || '/' || rights_holder_id, $period, 'holder_payable:' || rights_holder_id,
       -balance, currency, 'payout for ' || $period, $run_id, $now
FROM staging.payouts_due($period)
UNION ALL
SELECT 'payout/' || $period || '/' || rights_holder_id, $period, 'payouts_due:' || currency,
       balance, currency, 'payout to ' || rights_holder_id || ' for ' || $period, $run_id, $now
FROM staging.payouts_due($period);
