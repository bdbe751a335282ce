-- new_platform: a platform draws on the holder's catalog this period and never did before.
INSERT OR IGNORE INTO settlement.alerts
WITH now_using AS (
    SELECT rights_holder_id, platform_id, count(DISTINCT generation_id) AS n
    FROM staging.holder_work_use($period) GROUP BY ALL
),
before AS (
    SELECT DISTINCT sp.rights_holder_id, s.platform_id
    FROM staging.generations AS g
    JOIN staging.shares AS s USING (platform_id, generation_id)
    JOIN ref.splits AS sp ON sp.work_id = s.work_id
    WHERE NOT s.is_residual AND g.created_at < strptime($period, '%Y-%m')
)
SELECT sha256(r.rule_id || '|' || $period || '|' || u.platform_id), r.rule_id, r.rights_holder_id, r.kind, $period,
       u.platform_id, printf('platform %s drew on your catalog for the first time in %s (%d generations)',
                             u.platform_id, $period, u.n),
       $now
FROM ref.alert_rules AS r
JOIN now_using AS u USING (rights_holder_id)
LEFT JOIN before AS b USING (rights_holder_id, platform_id)
WHERE r.kind = 'new_platform' AND b.platform_id IS NULL AND u.n >= r.min_generations;
