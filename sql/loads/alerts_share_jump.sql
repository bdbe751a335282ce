-- share_jump: a work's share of all generations of the period against the previous period's.
INSERT OR IGNORE INTO settlement.alerts
WITH total AS (
    SELECT (SELECT count(*) FROM staging.generations_in($period)) AS cur,
           (SELECT count(*) FROM staging.generations_in($previous)) AS prev
),
cur AS (SELECT rights_holder_id, work_id, count(DISTINCT (platform_id, generation_id)) AS n
        FROM staging.holder_work_use($period) GROUP BY ALL),
prev AS (SELECT rights_holder_id, work_id, count(DISTINCT (platform_id, generation_id)) AS n
         FROM staging.holder_work_use($previous) GROUP BY ALL)
SELECT sha256(r.rule_id || '|' || $period || '|' || c.work_id), r.rule_id, r.rights_holder_id, r.kind, $period,
       c.work_id,
       printf('work %s drew on %d of %d generations in %s (%.2f %%) against %d of %d in %s (%.2f %%): x%.1f',
              c.work_id, c.n, t.cur, $period, 100.0 * c.n / t.cur, p.n, t.prev, $previous, 100.0 * p.n / t.prev,
              (c.n / t.cur) / (p.n / t.prev)),
       $now
FROM ref.alert_rules AS r
JOIN cur AS c USING (rights_holder_id)
JOIN prev AS p USING (rights_holder_id, work_id)
CROSS JOIN total AS t
WHERE r.kind = 'share_jump' AND c.n >= r.min_generations
  AND c.n * t.prev >= r.threshold * p.n * t.cur;
