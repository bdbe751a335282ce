-- Mails with their outcome ($period NULL: every period), for `deliveries list` and the
-- finance report.
SELECT period, rights_holder_id, email, kind, status, attempts, last_error, sent_at, delivery_id
FROM settlement.deliveries
WHERE $period IS NULL OR period = $period
ORDER BY period, rights_holder_id, kind DESC, email, delivery_id;
