-- Raised alerts ($period / $rights_holder_id NULL: all).
SELECT alert_id, rights_holder_id, kind, period, subject, detail, raised_at, rule_id
FROM settlement.alerts
WHERE ($period IS NULL OR period = $period) AND ($rights_holder_id IS NULL OR rights_holder_id = $rights_holder_id)
ORDER BY period, rights_holder_id, kind, subject;
