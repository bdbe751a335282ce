-- How many generations a closed period has now, and how many its close paid for: more now
-- means late arrivals (generations are only ever added). A range count, pruned to the month's
-- row groups by created_at's statistics. Params: $period.
SELECT (SELECT count(*) FROM staging.generations_in($period)) AS n_now,
       (SELECT n_settled FROM settlement.closes WHERE period = $period) AS n_settled;
