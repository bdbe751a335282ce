-- near_copy: one of the holder's works holds at least the threshold of a whole generation.
INSERT OR IGNORE INTO settlement.alerts
SELECT sha256(r.rule_id || '|' || $period || '|' || u.platform_id || '/' || u.generation_id || '/' || u.work_id),
       r.rule_id, r.rights_holder_id, r.kind, $period, u.platform_id || '/' || u.generation_id,
       printf('generation %s of %s is %.1f %% work %s', u.generation_id, u.platform_id, 100 * u.share, u.work_id),
       $now
FROM ref.alert_rules AS r
JOIN staging.holder_work_use($period) AS u USING (rights_holder_id)
WHERE r.kind = 'near_copy' AND u.share >= r.threshold;
