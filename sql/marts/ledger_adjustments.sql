-- Post the adjustments an open period pays: per corrected period and platform, one
-- transaction from the royalty pool to the holders; its memo names what it corrects.
INSERT INTO ledger.postings (transaction_id, period, account, amount, currency, memo, run_id, posted_at)
SELECT 'adjust/' || period || '/' || corrects_period || '/' || platform_id || '/' || $run_id, period,
       'royalty_pool:' || platform_id, -sum(amount), currency,
       'adjustment paid in ' || period || ': ' || any_value(reason), $run_id, $now
FROM settlement.adjustments
WHERE period = $period
GROUP BY period, corrects_period, platform_id, currency
UNION ALL
SELECT 'adjust/' || period || '/' || corrects_period || '/' || platform_id || '/' || $run_id, period,
       'holder_payable:' || rights_holder_id, amount, currency, reason, $run_id, $now
FROM settlement.adjustments
WHERE period = $period;
