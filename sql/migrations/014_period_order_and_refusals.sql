-- Months are settled in order: a month's previous month must be closed before it is
-- calculated, unless a person waives that for the pair (the previous month was settled
-- elsewhere, say). The waiver names who decided and why; it is never deleted.
CREATE TABLE IF NOT EXISTS settlement.order_waivers (
    period          VARCHAR NOT NULL,  -- the month allowed to go ahead
    previous_period VARCHAR NOT NULL,  -- the month it no longer waits for
    waived_by       VARCHAR NOT NULL,  -- a person, normalised (settlement.identity)
    reason          VARCHAR NOT NULL,
    waived_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (period, previous_period)
);

-- Every answer to a month's approval that the four-eyes rule refused (the preparer approving
-- their own month, a service identity): who answered, for which calculation, and why it was
-- refused. The approval keeps waiting for a second person.
CREATE TABLE IF NOT EXISTS settlement.approval_refusals (
    period      VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,  -- the calculation the answer was for
    answered_by VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,
    answered_at TIMESTAMP NOT NULL
);
