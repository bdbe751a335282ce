-- Postings on rights holders' payables, with the holder read from the chart of accounts
-- (ledger.accounts), never parsed from the account name.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE VIEW staging.holder_postings AS
SELECT p.*, a.party_id AS rights_holder_id
FROM ledger.postings AS p
JOIN ledger.accounts AS a USING (account)
WHERE a.kind = 'holder_payable';
