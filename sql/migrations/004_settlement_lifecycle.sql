-- Period lifecycle: approvals by a second person, the close, payouts, and adjustments that
-- correct closed periods from the next open one.
CREATE TABLE IF NOT EXISTS settlement.approvals (
    period      VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,  -- the calculation that was approved
    approved_by VARCHAR NOT NULL,
    approved_at TIMESTAMP NOT NULL,
    PRIMARY KEY (period, run_id)
);

CREATE TABLE IF NOT EXISTS settlement.closes (
    period        VARCHAR PRIMARY KEY,
    run_id        VARCHAR NOT NULL,
    closed_by     VARCHAR NOT NULL,
    closed_at     TIMESTAMP NOT NULL,
    snapshot_path VARCHAR NOT NULL,
    snapshot_sha256 VARCHAR NOT NULL
);

-- Which generations a closed period paid for: a generation that arrives later for that
-- period is paid by an adjustment, never by rewriting the closed period.
CREATE TABLE IF NOT EXISTS settlement.settled_generations (
    period        VARCHAR NOT NULL,
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL,
    PRIMARY KEY (platform_id, generation_id)
);

-- Differences between what a closed period paid and what it should have paid with what is
-- known now (late generations, corrected splits), paid in the open period `period`.
CREATE TABLE IF NOT EXISTS settlement.adjustments (
    period           VARCHAR NOT NULL,  -- the open period that pays the correction
    corrects_period  VARCHAR NOT NULL,  -- the closed period it corrects
    platform_id      VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    amount           DECIMAL(38, 2) NOT NULL,
    currency         VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (period, corrects_period, platform_id, rights_holder_id)
);
