-- Statement mails of a period still to send: pending (never tried, or cut short by a kill) and,
-- when $retry, failed ones (attempts used up while the mail server was down). A bounce (the
-- server refused the address) is retried only when $bounced: the address has to be fixed first.
SELECT d.delivery_id, d.period, d.rights_holder_id, d.email, d.attempts, r.name AS holder_name
FROM settlement.deliveries AS d
JOIN ref.rights_holders AS r USING (rights_holder_id)
WHERE ($period IS NULL OR d.period = $period)
  AND (d.status = 'pending' OR ($retry AND d.status = 'failed') OR ($bounced AND d.status = 'bounced'))
ORDER BY d.period, d.rights_holder_id, d.email;
