-- A recalculation of an open period first reverses the postings of the calculation it
-- replaces: a new entry that names what it corrects, never an edit.
INSERT INTO ledger.postings (transaction_id, period, account, amount, currency, memo, run_id, posted_at)
SELECT 'reverse/' || transaction_id, period, account, -amount, currency,
       'reverses ' || transaction_id || ' (replaced by calculation ' || $run_id || ')', $run_id, $now
FROM ledger.postings
WHERE period = $period AND run_id = $reversed_run_id AND (transaction_id LIKE 'settle/%' OR transaction_id LIKE 'adjust/%');
