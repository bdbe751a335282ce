-- Row counts a period's calculation read and wrote.
SELECT
    (SELECT count(*) FROM staging.generations WHERE period = $period) AS generations,
    (SELECT count(*) FROM attribution.shares AS s JOIN staging.generations AS g USING (platform_id, generation_id)
     WHERE g.period = $period) AS attribution_shares,
    (SELECT count(DISTINCT s.run_id) FROM attribution.shares AS s JOIN staging.generations AS g USING (platform_id, generation_id)
     WHERE g.period = $period) AS attribution_runs,
    (SELECT count(*) FROM settlement.statement_lines WHERE period = $period) AS statement_lines,
    (SELECT count(*) FROM settlement.holder_totals WHERE period = $period) AS holder_totals,
    (SELECT count(*) FROM settlement.adjustments WHERE period = $period) AS adjustments;
