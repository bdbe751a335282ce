-- Post a period's calculation: one transaction per platform that moves the royalty pool to
-- holder payables. Postings are never updated or deleted; the transaction sums to zero.
INSERT INTO ledger.postings (transaction_id, period, account, amount, currency, memo, run_id, posted_at)
SELECT 'settle/' || $period || '/' || platform_id || '/' || $run_id, $period,
       'royalty_pool:' || platform_id, -pool_amount, currency,
       'royalty pool of ' || platform_id || ' for ' || $period, $run_id, $now
FROM settlement.pools
WHERE period = $period
UNION ALL
SELECT 'settle/' || $period || '/' || platform_id || '/' || $run_id, $period,
       'holder_payable:' || rights_holder_id, amount, currency,
       'earnings from ' || platform_id || ' for ' || $period, $run_id, $now
FROM settlement.holder_totals
WHERE period = $period AND amount <> 0;
