-- One mail per contact of the holder for each alert of the period not mailed yet.
INSERT OR IGNORE INTO settlement.deliveries
    (delivery_id, period, rights_holder_id, email, queued_at, status, attempts, kind, alert_id)
SELECT sha256('alert|' || a.alert_id || '|' || c.email), a.period, a.rights_holder_id, c.email, $now, 'pending', 0,
       'alert', a.alert_id
FROM settlement.alerts AS a
JOIN ref.holder_contacts AS c USING (rights_holder_id)
WHERE a.period = $period;
