-- A digest of everything a period's calculation reads. Same digest, same result: a rerun with
-- unchanged inputs can leave the existing calculation as it is, and a close refuses a period
-- whose inputs changed since its approved calculation.
-- Order-independent and streaming (count, xor and sum of 64-bit row hashes), so it costs one
-- scan of the month even at 10^8 share rows; it detects change, it is not a tamper seal.
-- Earlier months are covered by what can change them after their close (restatements): how
-- many generations they have (late arrivals add some), the late arrivals, the attribution runs
-- and rejections, and the reference data, all read in full; their own rows are not rescanned,
-- so the digest's cost does not grow with the warehouse's history.
WITH period_generations AS (
    SELECT * FROM staging.generations_in($period)
),
items AS (
    SELECT hash('g', platform_id, generation_id, model_version, revenue_amount, revenue_currency, territory) AS h
    FROM period_generations
    UNION ALL
    SELECT hash('s', s.platform_id, s.generation_id, s.work_id, s.share, s.run_id)
    FROM staging.shares AS s
    SEMI JOIN period_generations AS g USING (platform_id, generation_id)
    UNION ALL
    -- which rule decided each generation (no row for one attributed before 015_share_rule:
    -- an unchanged month keeps its fingerprint)
    SELECT hash('d', d.platform_id, d.generation_id, d.run_id, d.rule, d.alpha, d.min_confidence,
                d.confidence, d.p_value, d.paid_by)
    FROM attribution.share_rules AS d
    SEMI JOIN period_generations AS g USING (platform_id, generation_id)
    UNION ALL
    -- the share of each generation attributable to each holder's catalog (020_group_shares;
    -- informational, shown on statements; no row where the contract names no group method)
    SELECT hash('q', q.platform_id, q.generation_id, q.rights_holder_id, q.run_id, q.share, q.method)
    FROM attribution.group_shares AS q
    SEMI JOIN period_generations AS g USING (platform_id, generation_id)
    UNION ALL
    SELECT hash('e', count(*)) FROM staging.generations WHERE created_at < strptime($period, '%Y-%m')
    UNION ALL
    SELECT hash('l', platform_id, generation_id) FROM raw.late_arrivals
    UNION ALL
    SELECT hash('a', run_id, n_generations, n_rejected) FROM attribution.runs
    UNION ALL
    SELECT hash('r', platform_id, generation_id, run_id) FROM attribution.rejections
    UNION ALL
    SELECT hash('p', work_id, right_type, rights_holder_id, share, effective_from, effective_to) FROM ref.splits
    UNION ALL
    SELECT hash('c', contract_id, version, pool_rate, effective_from, effective_to, fee_per_generation,
                minimum_guarantee, training_share, publishing_weight, master_weight, currency)
    FROM ref.contracts
    UNION ALL
    SELECT hash('x', period, from_currency, to_currency, rate) FROM ref.fx_rates
    UNION ALL
    SELECT hash('m', model_version, example_index, work_id) FROM ref.training_manifest
    UNION ALL
    SELECT hash('h', rights_holder_id, min_payout, payout_currency) FROM ref.rights_holders
)
SELECT sha256(CAST(count(*) AS VARCHAR) || '|' || CAST(coalesce(bit_xor(h), 0) AS VARCHAR)
              || '|' || CAST(coalesce(sum(CAST(h AS HUGEINT)), 0) AS VARCHAR)) AS fingerprint
FROM items;
