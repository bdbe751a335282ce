SELECT rule_id, rights_holder_id, kind, threshold, min_generations, created_at FROM ref.alert_rules
WHERE $rights_holder_id IS NULL OR rights_holder_id = $rights_holder_id
ORDER BY rights_holder_id, created_at, rule_id;
