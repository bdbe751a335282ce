-- Postings on accounts outside the chart of accounts (there must be none).
SELECT 'ledger_unknown_account' AS rule, a.account AS subject,
       'account kind ' || a.kind || ' is not in ledger.account_kinds' AS detail
FROM ledger.accounts AS a
ANTI JOIN ledger.account_kinds AS k USING (kind)
ORDER BY a.account;
