-- After an SMTP conversation: its outcome on the attempt, and the delivery's status.
UPDATE settlement.delivery_attempts
SET finished_at = $now, outcome = $outcome, smtp_code = $smtp_code, detail = $detail
WHERE delivery_id = $delivery_id
  AND attempt = (SELECT max(attempt) FROM settlement.delivery_attempts WHERE delivery_id = $delivery_id);
UPDATE settlement.deliveries
SET status = $status, last_error = $last_error,
    sent_at = CASE WHEN $status = 'sent' THEN $now ELSE sent_at END
WHERE delivery_id = $delivery_id;
