-- A holder's monitoring rule (tributary alerts add).
INSERT INTO ref.alert_rules VALUES ($rule_id, $rights_holder_id, $kind, $threshold, $min_generations, $now);
