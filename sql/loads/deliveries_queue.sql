-- One statement mail per contact of every holder with a final statement file for the period.
-- The id is the idempotency key (migration 017): queuing again adds only new contacts.
INSERT OR IGNORE INTO settlement.deliveries
    (delivery_id, period, rights_holder_id, email, queued_at, status, attempts)
SELECT sha256($period || '|' || f.rights_holder_id || '|' || c.email), $period, f.rights_holder_id, c.email,
       $now, 'pending', 0
FROM (SELECT DISTINCT rights_holder_id FROM settlement.statement_files WHERE period = $period) AS f
JOIN ref.holder_contacts AS c USING (rights_holder_id);
