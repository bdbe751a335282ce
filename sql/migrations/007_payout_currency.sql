-- What each paid holder receives in its own payout currency. The ledger stays in the contract
-- currency; conversion happens once, at payout (the close), with the period's rate for the
-- pair ledger currency -> payout currency, rounded to the cent.
CREATE TABLE IF NOT EXISTS settlement.payout_instructions (
    period           VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    ledger_currency  VARCHAR NOT NULL,
    ledger_amount    DECIMAL(38, 2) NOT NULL,
    payout_currency  VARCHAR NOT NULL,
    fx_rate          DECIMAL(18, 8) NOT NULL,
    fx_source        VARCHAR NOT NULL,
    payout_amount    DECIMAL(38, 2) NOT NULL,
    run_id           VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (period, rights_holder_id, ledger_currency)
);
