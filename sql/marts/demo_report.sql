-- The headline table `make demo` prints for a period.
SELECT
    $period AS period,
    (SELECT count(*) FROM staging.generations WHERE period = $period) AS generations_ingested,
    (SELECT count(*) FROM raw.quarantine) AS quarantined,
    (SELECT count(DISTINCT s.generation_id) FROM staging.shares AS s
     JOIN staging.generations AS g USING (platform_id, generation_id) WHERE g.period = $period) AS attributed,
    (SELECT count(*) FROM attribution.rejections) AS attribution_rejected,
    (SELECT coalesce(sum(revenue), 0) FROM settlement.pools WHERE period = $period) AS revenue,
    (SELECT coalesce(sum(pool_amount), 0) FROM settlement.pools WHERE period = $period) AS pool,
    (SELECT coalesce(sum(amount), 0) FROM settlement.holder_totals WHERE period = $period) AS total_paid,
    (SELECT count(DISTINCT rights_holder_id) FROM settlement.statement_files WHERE period = $period) AS statements,
    (SELECT coalesce(any_value(status), 'open') FROM settlement.periods WHERE period = $period) AS status,
    (SELECT coalesce(-sum(amount), 0) FROM staging.holder_postings
     WHERE period = $period AND transaction_id LIKE 'payout/%') AS paid_out,
    (SELECT coalesce(sum(amount), 0) FROM staging.holder_postings WHERE period <= $period) AS carried_forward;
