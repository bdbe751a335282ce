-- Register the accounts of new postings in the chart of accounts; run in the same transaction
-- as the postings. An account name is '<kind>:<party>' and is parsed here, once.
INSERT INTO ledger.accounts
SELECT DISTINCT p.account, split_part(p.account, ':', 1), substr(p.account, strpos(p.account, ':') + 1)
FROM ledger.postings AS p
WHERE NOT EXISTS (SELECT 1 FROM ledger.accounts AS a WHERE a.account = p.account);
