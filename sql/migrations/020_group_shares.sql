-- Group-wise (holder) attribution: a contract may name a group method (attribution/groups.py:
-- "group-unlearning", "trak-sum") with its parameters, checked when it is registered
-- (settlement.reference.register_contract); '' means none.
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS group_method VARCHAR DEFAULT '';
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS group_params_json VARCHAR DEFAULT '{}';

-- Per generation, the share attributable to each rights holder's catalog, as the run that
-- attributed the generation computed it: written by the same load as its shares
-- (loads/attribution_group_shares.sql, from the same shard's files, in the same transaction),
-- read by statements (column catalog_share), never recomputed. Informational: payouts follow
-- attribution.shares and the contract's confidence rule, not these rows. A holder whose
-- catalog the model did not train on has no row.
CREATE TABLE IF NOT EXISTS attribution.group_shares (
    run_id           VARCHAR NOT NULL,
    platform_id      VARCHAR NOT NULL,
    generation_id    VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    share            DECIMAL(18, 9) NOT NULL CHECK (share >= 0 AND share <= 1),
    score            DOUBLE,           -- the method's group score (see params_json's method)
    method           VARCHAR NOT NULL,  -- group-unlearning | trak-sum
    PRIMARY KEY (platform_id, generation_id, rights_holder_id)
);
