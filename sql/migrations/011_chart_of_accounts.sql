-- A typed chart of accounts. An account is '<kind>:<party>' (royalty_pool:p1,
-- holder_payable:RH0001, payouts_due:USD); ledger.accounts records each one once, with its
-- kind and party, so reports join on it instead of parsing names. Sign convention of the
-- postings (unchanged): debit positive, credit negative; every transaction sums to zero.
CREATE TABLE IF NOT EXISTS ledger.account_kinds (
    kind           VARCHAR PRIMARY KEY,
    account_type   VARCHAR NOT NULL CHECK (account_type IN ('asset', 'liability', 'equity', 'income', 'expense')),
    normal_balance VARCHAR NOT NULL CHECK (normal_balance IN ('debit', 'credit')),
    party          VARCHAR NOT NULL CHECK (party IN ('platform', 'rights_holder', 'currency')),
    description    VARCHAR NOT NULL
);
INSERT OR IGNORE INTO ledger.account_kinds VALUES
    ('royalty_pool', 'income', 'credit', 'platform',
     'royalties a platform owes for its generations: credited with the pool when a period is allocated'),
    ('holder_payable', 'liability', 'debit', 'rights_holder',
     'what a rights holder has earned and not been paid: debited with earnings, credited with payouts; '
     || 'a positive balance is owed to the holder (carried forward below its minimum payout)'),
    ('payouts_due', 'liability', 'debit', 'currency',
     'payouts released at a close, per ledger currency, for the payment run (settlement.payout_instructions)');

CREATE TABLE IF NOT EXISTS ledger.accounts (
    account  VARCHAR PRIMARY KEY,
    kind     VARCHAR NOT NULL,
    party_id VARCHAR NOT NULL
);
-- Accounts of postings made before this migration.
INSERT OR IGNORE INTO ledger.accounts
SELECT DISTINCT account, split_part(account, ':', 1), substr(account, strpos(account, ':') + 1)
FROM ledger.postings;
