-- Headline numbers of a period's calculation.
SELECT
    (SELECT coalesce(sum(pool_amount), 0) FROM settlement.pools WHERE period = $period) AS pool,
    (SELECT coalesce(sum(amount), 0) FROM settlement.holder_totals WHERE period = $period) AS total_paid,
    (SELECT coalesce(sum(n_generations), 0) FROM settlement.pools WHERE period = $period) AS n_generations,
    (SELECT count(DISTINCT rights_holder_id) FROM settlement.holder_totals
     WHERE period = $period AND amount > 0) AS holders_with_earnings;
