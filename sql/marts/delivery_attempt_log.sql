-- Every attempt of a period's statement mails (retries and kills included), oldest first.
SELECT d.rights_holder_id, d.email, a.attempt, a.run_id, a.started_at, a.finished_at, a.outcome, a.smtp_code, a.detail
FROM settlement.delivery_attempts AS a
JOIN settlement.deliveries AS d USING (delivery_id)
WHERE d.period = $period
ORDER BY d.rights_holder_id, d.email, a.attempt;
