-- Mails still to send (statements and alerts): pending (never tried, or cut short by a kill)
-- and, when $retry, failed ones (attempts used up while the mail server was down). A bounce (the
-- server refused the address) is retried only when $bounced: the address has to be fixed first.
SELECT d.delivery_id, d.period, d.rights_holder_id, d.email, d.attempts, r.name AS holder_name, d.kind,
       a.kind AS alert_kind, a.subject AS alert_subject, a.detail AS alert_detail
FROM settlement.deliveries AS d
JOIN ref.rights_holders AS r USING (rights_holder_id)
LEFT JOIN settlement.alerts AS a USING (alert_id)
WHERE ($period IS NULL OR d.period = $period)
  AND (d.status = 'pending' OR ($retry AND d.status = 'failed') OR ($bounced AND d.status = 'bounced'))
ORDER BY d.period, d.rights_holder_id, d.kind DESC, d.email, d.delivery_id;
