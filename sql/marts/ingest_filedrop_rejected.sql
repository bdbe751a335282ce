-- The quarantine rows of a staged file drop: rule, reason, and where the record is, so its
-- payload as delivered can be attached (line is NULL for records read by the fast path).
SELECT
    $platform_id AS platform_id,
    generation_id,
    rule,
    reason,
    line,
    source,
    line_no
FROM drop_checked
WHERE rule IS NOT NULL
ORDER BY source, line_no;
