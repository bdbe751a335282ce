-- A dispute and its first state (open), written together in one transaction by the caller.
INSERT INTO portal.disputes VALUES ($dispute_id, $period, $platform_id, $rights_holder_id, $work_id,
    $right_type, $line_amount, $currency, $reason, $by, $now);
INSERT INTO portal.dispute_events VALUES ($dispute_id, 1, 'open', $by, $now, $reason, NULL, NULL);
