-- A restore keeps what holders did after the snapshot: the users, disputes, dispute events and
-- access log rows of the replaced warehouse (attached read-only as `live`) that the snapshot
-- lacks, and users disabled since. Rows are never updated in place otherwise, so adding the
-- missing keys is the whole difference.
INSERT INTO portal.users
SELECT l.* FROM live.portal.users AS l ANTI JOIN portal.users AS s USING (user_id);
UPDATE portal.users AS s SET disabled_at = l.disabled_at
FROM live.portal.users AS l
WHERE l.user_id = s.user_id AND s.disabled_at IS NULL AND l.disabled_at IS NOT NULL;
INSERT INTO portal.disputes
SELECT l.* FROM live.portal.disputes AS l ANTI JOIN portal.disputes AS s USING (dispute_id);
INSERT INTO portal.dispute_events
SELECT l.* FROM live.portal.dispute_events AS l ANTI JOIN portal.dispute_events AS s USING (dispute_id, seq);
INSERT INTO portal.access_log
SELECT l.* FROM live.portal.access_log AS l ANTI JOIN portal.access_log AS s USING (access_id);
-- with the journal batches those rows came from, so none is loaded a second time
INSERT INTO portal.access_journal_loads
SELECT l.* FROM live.portal.access_journal_loads AS l ANTI JOIN portal.access_journal_loads AS s USING (batch);
-- The sequences go past every carried id, so the next dispute or log row gets a new one.
SELECT count(nextval('portal.dispute_seq'))
FROM range((SELECT coalesce(max(dispute_id), 0) FROM portal.disputes));
SELECT count(nextval('portal.access_seq'))
FROM range((SELECT coalesce(max(access_id), 0) FROM portal.access_log));
-- The finance reports' disputes cut-offs: the files on disk were built with them.
INSERT OR REPLACE INTO portal.report_cutoffs SELECT * FROM live.portal.report_cutoffs;
